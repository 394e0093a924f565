import JobdCore
import Testing

@Suite struct RedisURLTests {
    @Test func hostOnlyTakesDefaults() throws {
        let url = try RedisURL(parsing: "redis://localhost")
        #expect(url == RedisURL(host: "localhost", port: 6379, password: nil, username: nil, database: 0))
    }

    @Test func everyPart() throws {
        let url = try RedisURL(parsing: "redis://worker:s3cret@redis.internal:6380/4")
        #expect(url == RedisURL(host: "redis.internal", port: 6380, password: "s3cret", username: "worker", database: 4))
    }

    @Test func passwordWithoutUser() throws {
        let url = try RedisURL(parsing: "redis://:pw@10.0.0.5/2")
        #expect(url.username == nil)
        #expect(url.password == "pw")
        #expect(url.host == "10.0.0.5")
        #expect(url.port == 6379)
        #expect(url.database == 2)
    }

    @Test func trailingSlashMeansDatabaseZero() throws {
        #expect(try RedisURL(parsing: "redis://h:1/").database == 0)
    }

    @Test func schemeIsCaseInsensitive() throws {
        #expect(try RedisURL(parsing: "REDIS://h").host == "h")
    }

    @Test(arguments: [
        ("redis://[::1]", "::1", 6379),
        ("redis://[::1]:6390/3", "::1", 6390),
        ("redis://:pw@[fe80::1:2]:7000", "fe80::1:2", 7000),
        ("redis://[::ffff:127.0.0.1]:1", "::ffff:127.0.0.1", 1),
    ])
    func ipv6(text: String, host: String, port: Int) throws {
        let url = try RedisURL(parsing: text)
        #expect(url.host == host)
        #expect(url.port == port)
    }

    @Test func passwordMayHoldReservedCharactersRawOrEscaped() throws {
        // The credentials end at the last "@", so a raw password may contain "@", ":" or "/".
        #expect(try RedisURL(parsing: "redis://:p@ss:w/rd@h").password == "p@ss:w/rd")
        #expect(try RedisURL(parsing: "redis://u%40x:p%3A%2F%25@h").password == "p:/%")
        #expect(try RedisURL(parsing: "redis://u%40x:p%3A%2F%25@h").username == "u@x")
    }

    @Test(arguments: [
        ("localhost:6379", #"JOBD_REDIS_URL: expected a URL like redis://host:6379/0 (missing "redis://")"#),
        ("http://h", #"JOBD_REDIS_URL: scheme "http" is not supported; use redis://"#),
        ("rediss://h", "JOBD_REDIS_URL: rediss:// (TLS) is not supported; use redis://"),
        ("redis://", "JOBD_REDIS_URL: host is missing"),
        ("redis://:6379", "JOBD_REDIS_URL: host is missing"),
        ("redis://:pw@/0", "JOBD_REDIS_URL: host is missing"),
        ("redis://h:abc", #"JOBD_REDIS_URL: port is not a number (a password needs an "@host" after it)"#),
        ("redis://h:-1", #"JOBD_REDIS_URL: port is not a number (a password needs an "@host" after it)"#),
        ("redis://h:", #"JOBD_REDIS_URL: port after ":" is empty"#),
        ("redis://h:0", "JOBD_REDIS_URL: port 0 is out of range (1-65535)"),
        ("redis://h:65536", "JOBD_REDIS_URL: port 65536 is out of range (1-65535)"),
        ("redis://h:99999999999999999999999", "JOBD_REDIS_URL: port 99999999999999999999999 is out of range (1-65535)"),
        ("redis://h/x", #"JOBD_REDIS_URL: database "x" is not a number"#),
        ("redis://h/1/2", #"JOBD_REDIS_URL: database "1/2" is not a number"#),
        ("redis://h/99999999999", "JOBD_REDIS_URL: database 99999999999 is out of range"),
        ("redis://h?timeout=1", ##"JOBD_REDIS_URL: query parameters ("?…") and fragments ("#…") are not supported"##),
        ("redis://ho st", #"JOBD_REDIS_URL: host "ho st" contains the invalid character " ""#),
        ("redis://::1", "JOBD_REDIS_URL: an IPv6 address must be in brackets, e.g. redis://[::1]:6379"),
        ("redis://[::1", #"JOBD_REDIS_URL: IPv6 address is missing its closing "]""#),
        ("redis://[::1]x", #"JOBD_REDIS_URL: unexpected "x" after the IPv6 address (expected ":port")"#),
        ("redis://[]", "JOBD_REDIS_URL: host is missing"),
        ("redis://[nothost]", #"JOBD_REDIS_URL: "[nothost]" is not an IPv6 address"#),
        ("redis://[::1]:abc", #"JOBD_REDIS_URL: port is not a number (a password needs an "@host" after it)"#),
        ("redis://secret@h", #"JOBD_REDIS_URL: credentials must be written as [user]:password@ (the ":" is missing)"#),
        ("redis://user:@h", #"JOBD_REDIS_URL: password after ":" is empty"#),
        ("redis://:pw%zz@h", "JOBD_REDIS_URL: password has an invalid %-escape"),
        ("redis://:pw%ff@h", "JOBD_REDIS_URL: password has an invalid %-escape"),
        ("redis://u%4:pw@h", "JOBD_REDIS_URL: username has an invalid %-escape"),
    ])
    func rejects(text: String, message: String) {
        #expect(throws: JobdInputError(message)) { try RedisURL(parsing: text) }
    }

    @Test func keyPrefixesMessages() {
        #expect(throws: JobdInputError(#"redis: port is not a number (a password needs an "@host" after it)"#)) {
            try RedisURL(parsing: "redis://h:x", key: "redis")
        }
    }

    @Test(arguments: [
        "redis://secret@h",
        "redis://user:secret@h?x",
        "redis://user:secret%zz@h",
        "redis://user:secret@",
        "redis://user:secret@h:nope",
    ])
    func errorsNeverQuoteThePassword(text: String) throws {
        do {
            _ = try RedisURL(parsing: text)
            Issue.record("expected \(text) to be rejected")
        } catch {
            #expect(!error.message.contains("secret"))
        }
    }

    @Test func redactedHidesThePassword() throws {
        let url = try RedisURL(parsing: "redis://worker:s3cret@redis.internal:6380/4")
        #expect(url.redacted == "redis://worker:***@redis.internal:6380/4")
        #expect("\(url)" == url.redacted)
        #expect(String(reflecting: url) == url.redacted)
        #expect(!"\(url)".contains("s3cret"))
    }

    @Test func redactedForms() throws {
        #expect(try RedisURL(parsing: "redis://h").redacted == "redis://h:6379/0")
        #expect(try RedisURL(parsing: "redis://:pw@h/1").redacted == "redis://:***@h:6379/1")
        #expect(try RedisURL(parsing: "redis://[::1]:7000").redacted == "redis://[::1]:7000/0")
        #expect(try RedisURL(parsing: "redis://a%40b:pw@h").redacted == "redis://a%40b:***@h:6379/0")
    }

    @Test func redactedParsesBackWithoutThePassword() throws {
        let url = try RedisURL(parsing: "redis://a%40b:pw@[::1]:7000/3")
        let again = try RedisURL(parsing: url.redacted)
        #expect(again == RedisURL(host: "::1", port: 7000, password: "***", username: "a@b", database: 3))
    }
}
