import CCurl
import JobdCore
import JobdThreads
import Logging
import Synchronization

/// One HTTP POST.
public struct HTTPPost: Sendable, Equatable {
    public var url: String
    /// `Name: value` lines.
    public var headers: [String]
    public var body: [UInt8]
    /// Checked on every address the transfer is about to connect to.
    public var networkPolicy: OutboundNetworkPolicy

    public init(url: String, headers: [String], body: [UInt8], networkPolicy: OutboundNetworkPolicy = OutboundNetworkPolicy()) {
        self.url = url
        self.headers = headers
        self.body = body
        self.networkPolicy = networkPolicy
    }
}

/// One message through an SMTP relay.
public struct MailSubmission: Sendable, Equatable {
    /// `smtp://host:port` or `smtps://host:port`.
    public var relayURL: String
    public var username: String?
    public var password: SecretText?
    public var startTLS: NotificationSettings.StartTLS
    public var from: String
    public var to: String
    /// The rendered message (`EmailMessage.render`), CRLF line ends.
    public var message: [UInt8]

    public init(
        relayURL: String, username: String?, password: SecretText?, startTLS: NotificationSettings.StartTLS,
        from: String, to: String, message: [UInt8]
    ) {
        self.relayURL = relayURL
        self.username = username
        self.password = password
        self.startTLS = startTLS
        self.from = from
        self.to = to
        self.message = message
    }
}

/// What a transfer came to.
public struct TransferReport: Sendable, Equatable {
    public var outcome: TransferOutcome
    /// At most `CurlTransport.excerptLimit` bytes of the response body (HTTP), the
    /// relay's last reply (SMTP) or the error, for the audit trail.
    public var excerpt: String
    public var seconds: Double

    public init(outcome: TransferOutcome, excerpt: String, seconds: Double) {
        self.outcome = outcome
        self.excerpt = excerpt
        self.seconds = seconds
    }
}

/// HTTP(S) and SMTP through libcurl, off the cooperative pool.
///
/// A fixed set of workers, each an actor on its own `DedicatedThreadExecutor` with
/// its own easy handle: `curl_easy_perform` blocks only that thread, and the handle
/// keeps its connections alive between transfers. Every transfer has a connect
/// and a total timeout; a cancelled task aborts its transfer from libcurl's
/// progress callback within a second. Redirects are never followed, and proxies from
/// the environment are ignored: an HTTP transfer connects directly, only to
/// addresses its `HTTPPost.networkPolicy` allows (checked in libcurl's open-socket
/// callback on the resolved address of each connection, so no spelling of a host
/// and no DNS answer gets around it). Mail goes to the operator's relay unchecked.
public final class CurlTransport: Sendable {
    public static let excerptLimit = 1_024

    private let workers: [CurlWorker]
    private let pool: CheckoutPool<Int>
    private let limits: CurlWorker.Limits

    /// - Parameters:
    ///   - connectTimeout: to establish a connection (TCP + TLS); at least 1 ms.
    ///   - timeout: for a whole transfer, connect included; at least 1 ms.
    public init(concurrency: Int, connectTimeout: Duration, timeout: Duration, userAgent: String) {
        precondition(concurrency > 0, "curl transport needs at least one worker")
        precondition(CurlGlobal.initialized, "curl_global_init failed")
        limits = CurlWorker.Limits(
            connectTimeoutMs: max(1, TotalConversion.milliseconds(connectTimeout)),
            timeoutMs: max(1, TotalConversion.milliseconds(timeout)), userAgent: userAgent)
        workers = (0..<concurrency).map { CurlWorker(name: "curl-\($0)") }
        pool = CheckoutPool(Array(0..<concurrency))
    }

    /// Deadlines in seconds (settings still kept as seconds); never traps (see
    /// `TotalConversion.duration(seconds:)`).
    public convenience init(concurrency: Int, connectTimeout: Double, timeout: Double, userAgent: String) {
        self.init(
            concurrency: concurrency, connectTimeout: TotalConversion.duration(seconds: connectTimeout),
            timeout: TotalConversion.duration(seconds: timeout), userAgent: userAgent)
    }

    public var concurrency: Int { workers.count }

    public func post(_ request: HTTPPost) async -> TransferReport {
        (try? await withSlot { await $0.post(request) }) ?? TransferReport(outcome: .cancelled, excerpt: "cancelled waiting for a worker", seconds: 0)
    }

    public func send(_ mail: MailSubmission) async -> TransferReport {
        (try? await withSlot { await $0.send(mail) }) ?? TransferReport(outcome: .cancelled, excerpt: "cancelled waiting for a worker", seconds: 0)
    }

    /// Runs `body` with a worker of its own, waiting for a free one first. A caller
    /// that must do something just before its transfer (claim the notification)
    /// does it inside, so no queueing for a worker happens between the two. Throws
    /// `CancellationError` if the task is cancelled while it waits for a worker.
    public func withSlot<T>(_ body: (Slot) async throws -> T) async throws -> T {
        let index = try await pool.checkOut()
        defer { pool.checkIn(index) }
        return try await body(Slot(worker: workers[index], limits: limits))
    }

    /// One worker, lent for the duration of `withSlot`.
    public struct Slot: Sendable {
        let worker: CurlWorker
        let limits: CurlWorker.Limits

        public func post(_ request: HTTPPost) async -> TransferReport {
            await perform(.http(request))
        }

        public func send(_ mail: MailSubmission) async -> TransferReport {
            await perform(.mail(mail))
        }

        private func perform(_ transfer: CurlWorker.Transfer) async -> TransferReport {
            if Task.isCancelled { return TransferReport(outcome: .cancelled, excerpt: "cancelled before sending", seconds: 0) }
            let cancel = CancelFlag()
            return await withTaskCancellationHandler {
                await worker.perform(transfer, limits: limits, cancel: cancel)
            } onCancel: {
                cancel.set()
            }
        }
    }
}

/// libcurl's global state is set up once per process, before any handle exists
/// (Swift runs a global's initializer exactly once, thread-safely).
enum CurlGlobal {
    static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
}

/// Set from any thread when the task waiting for a transfer is cancelled; read by
/// libcurl's progress callback on the worker thread.
final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .relaxed) }
    var isSet: Bool { flag.load(ordering: .relaxed) }
}

/// One easy handle on one thread.
actor CurlWorker {
    struct Limits: Sendable {
        var connectTimeoutMs: Int
        var timeoutMs: Int
        var userAgent: String
    }

    enum Transfer: Sendable {
        case http(HTTPPost)
        case mail(MailSubmission)
    }

    private nonisolated let executor: DedicatedThreadExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private let handle = CurlHandle()

    init(name: String) {
        executor = DedicatedThreadExecutor(name: name)
    }

    deinit {
        executor.shutdown()
    }

    func perform(_ transfer: Transfer, limits: Limits, cancel: CancelFlag) -> TransferReport {
        let started = monotonicMilliseconds()
        guard let curl = handle.easy() else {
            return TransferReport(outcome: .failed, excerpt: "curl_easy_init failed", seconds: 0)
        }
        // Options go back to defaults; live connections and the DNS cache stay.
        curl_easy_reset(curl)
        let context = TransferContext(cancel: cancel)
        let outcome: (code: CURLcode, setupError: String?)
        switch transfer {
        case .http(let request):
            context.isSMTP = false
            context.networkPolicy = request.networkPolicy
            outcome = performHTTP(curl, request, limits: limits, context: context)
        case .mail(let mail):
            context.isSMTP = true
            outcome = performMail(curl, mail, limits: limits, context: context)
        }
        let seconds = Double(monotonicMilliseconds() - started) / 1000
        if let setupError = outcome.setupError {
            return TransferReport(outcome: .failed, excerpt: setupError, seconds: seconds)
        }
        var status = 0
        jobd_curl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        let code = outcome.code
        if code == CURLE_OK {
            let excerpt = context.isSMTP ? context.reply(status: status) : context.bodyExcerpt
            return TransferReport(
                outcome: .response(status: status, retryAfter: context.retryAfter), excerpt: excerpt, seconds: seconds)
        }
        if !context.refusedAddresses.isEmpty, context.socketsOpened == 0 {
            let addresses = context.refusedAddresses.joined(separator: ", ")
            return TransferReport(
                outcome: .destinationNotAllowed(address: addresses),
                excerpt: Self.bounded("refused to connect to \(addresses): not in JOBD_NOTIFY_ALLOWED_NETWORKS"),
                seconds: seconds)
        }
        let message = handle.errorMessage(code)
        if code == CURLE_USE_SSL_FAILED {
            return TransferReport(
                outcome: .tlsUnavailable,
                excerpt: Self.bounded("STARTTLS is required and the relay did not offer it (\(message)); nothing was sent"),
                seconds: seconds)
        }
        // SMTP refusals (RCPT 550, AUTH 535, …) end the transfer with an error but
        // carry the relay's reply code, which is what decides permanent or not.
        if status >= 400 {
            let excerpt = context.isSMTP ? context.reply(status: status) : context.bodyExcerpt
            return TransferReport(
                outcome: .response(status: status, retryAfter: context.retryAfter),
                excerpt: excerpt.isEmpty ? message : excerpt, seconds: seconds)
        }
        let kind: TransferOutcome
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            kind = .timedOut
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT, CURLE_SEND_ERROR,
             CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE:
            kind = .connectionFailed
        case CURLE_ABORTED_BY_CALLBACK:
            kind = .cancelled
        default:
            kind = .failed
        }
        return TransferReport(outcome: kind, excerpt: Self.bounded(message), seconds: seconds)
    }

    private func performHTTP(
        _ curl: UnsafeMutableRawPointer, _ request: HTTPPost, limits: Limits, context: TransferContext
    ) -> (code: CURLcode, setupError: String?) {
        var headers = CurlStringList()
        defer { headers.free() }
        // No `Expect: 100-continue` round trip before the body.
        headers.append("Expect:")
        for header in request.headers { headers.append(header) }
        var failed: String?
        func set(_ rc: CURLcode, _ what: String) { if rc != CURLE_OK, failed == nil { failed = "setting \(what): \(handle.errorMessage(rc))" } }
        set(jobd_curl_setopt_string(curl, CURLOPT_URL, request.url), "URL")
        set(jobd_curl_setopt_string(curl, CURLOPT_PROTOCOLS_STR, "http,https"), "protocols")
        set(jobd_curl_setopt_long(curl, CURLOPT_FOLLOWLOCATION, 0), "redirects")
        set(jobd_curl_setopt_long(curl, CURLOPT_POST, 1), "POST")
        // The size first: COPYPOSTFIELDS copies that many bytes (bodies are small).
        set(jobd_curl_setopt_offset(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count)), "body size")
        var body = request.body
        body.append(0)  // never an empty buffer, whose address may be nil
        let copied = body.withUnsafeMutableBytes { jobd_curl_setopt_pointer(curl, CURLOPT_COPYPOSTFIELDS, $0.baseAddress) }
        set(copied, "body")
        set(jobd_curl_setopt_slist(curl, CURLOPT_HTTPHEADER, headers.list), "headers")
        set(jobd_curl_setopt_data_callback(curl, CURLOPT_WRITEFUNCTION, curlWriteCallback), "write callback")
        set(jobd_curl_setopt_data_callback(curl, CURLOPT_HEADERFUNCTION, curlHeaderCallback), "header callback")
        applyCommon(curl, limits: limits, context: context, set)
        if let failed { return (CURLE_FAILED_INIT, failed) }
        let code = withExtendedLifetime(context) { curl_easy_perform(curl) }
        return (code, nil)
    }

    private func performMail(
        _ curl: UnsafeMutableRawPointer, _ mail: MailSubmission, limits: Limits, context: TransferContext
    ) -> (code: CURLcode, setupError: String?) {
        var recipients = CurlStringList()
        defer { recipients.free() }
        recipients.append("<\(mail.to)>")
        context.upload = mail.message
        var failed: String?
        func set(_ rc: CURLcode, _ what: String) { if rc != CURLE_OK, failed == nil { failed = "setting \(what): \(handle.errorMessage(rc))" } }
        // The URL's path is the name jobd gives in EHLO: the sender's domain.
        set(jobd_curl_setopt_string(curl, CURLOPT_URL, "\(mail.relayURL)/\(EmailAddress.domain(mail.from))"), "URL")
        set(jobd_curl_setopt_string(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps"), "protocols")
        set(jobd_curl_setopt_string(curl, CURLOPT_MAIL_FROM, "<\(mail.from)>"), "MAIL FROM")
        set(jobd_curl_setopt_slist(curl, CURLOPT_MAIL_RCPT, recipients.list), "RCPT TO")
        set(jobd_curl_setopt_long(curl, CURLOPT_UPLOAD, 1), "upload")
        set(jobd_curl_setopt_offset(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(mail.message.count)), "size")
        set(jobd_curl_setopt_data_callback(curl, CURLOPT_READFUNCTION, curlReadCallback), "read callback")
        // For SMTP, libcurl hands every server reply line to the header callback.
        set(jobd_curl_setopt_data_callback(curl, CURLOPT_HEADERFUNCTION, curlHeaderCallback), "reply callback")
        let tls: curl_usessl
        switch mail.startTLS {
        case .off: tls = mail.relayURL.hasPrefix("smtps:") ? CURLUSESSL_ALL : CURLUSESSL_NONE
        case .try: tls = mail.relayURL.hasPrefix("smtps:") ? CURLUSESSL_ALL : CURLUSESSL_TRY
        case .require: tls = CURLUSESSL_ALL
        }
        set(jobd_curl_setopt_long(curl, CURLOPT_USE_SSL, Int(tls.rawValue)), "STARTTLS")
        if let username = mail.username { set(jobd_curl_setopt_string(curl, CURLOPT_USERNAME, username), "user") }
        if let password = mail.password { set(jobd_curl_setopt_string(curl, CURLOPT_PASSWORD, password.value), "password") }
        applyCommon(curl, limits: limits, context: context, set)
        if let failed { return (CURLE_FAILED_INIT, failed) }
        let code = withExtendedLifetime(context) { curl_easy_perform(curl) }
        return (code, nil)
    }

    private func applyCommon(
        _ curl: UnsafeMutableRawPointer, limits: Limits, context: TransferContext, _ set: (CURLcode, String) -> Void
    ) {
        let opaque = Unmanaged.passUnretained(context).toOpaque()
        set(jobd_curl_setopt_long(curl, CURLOPT_NOSIGNAL, 1), "no signals")  // required with threads
        set(jobd_curl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, limits.connectTimeoutMs), "connect timeout")
        set(jobd_curl_setopt_long(curl, CURLOPT_TIMEOUT_MS, limits.timeoutMs), "timeout")
        set(jobd_curl_setopt_string(curl, CURLOPT_USERAGENT, limits.userAgent), "user agent")
        set(jobd_curl_setopt_pointer(curl, CURLOPT_ERRORBUFFER, handle.errorBuffer), "error buffer")
        set(jobd_curl_setopt_pointer(curl, CURLOPT_WRITEDATA, opaque), "write data")
        set(jobd_curl_setopt_pointer(curl, CURLOPT_HEADERDATA, opaque), "header data")
        set(jobd_curl_setopt_pointer(curl, CURLOPT_READDATA, opaque), "read data")
        set(jobd_curl_setopt_long(curl, CURLOPT_NOPROGRESS, 0), "progress")
        set(jobd_curl_setopt_progress_callback(curl, curlProgressCallback), "progress callback")
        set(jobd_curl_setopt_pointer(curl, CURLOPT_XFERINFODATA, opaque), "progress data")
        // "" disables proxies, including those named by http_proxy / all_proxy: through
        // a proxy, the address checked would be the proxy's, not the destination's.
        set(jobd_curl_setopt_string(curl, CURLOPT_PROXY, ""), "no proxy")
        set(jobd_curl_setopt_opensocket_callback(curl, curlOpenSocketCallback), "open-socket callback")
        set(jobd_curl_setopt_pointer(curl, CURLOPT_OPENSOCKETDATA, opaque), "open-socket data")
        handle.errorBuffer[0] = 0
    }

    static func bounded(_ text: String) -> String {
        guard text.utf8.count > CurlTransport.excerptLimit else { return text }
        return TransferContext.text(Array(text.utf8.prefix(CurlTransport.excerptLimit)))
    }
}

/// The easy handle and its error buffer; only its worker's thread touches them,
/// and `deinit` runs once nothing else can.
final class CurlHandle {
    private var raw: UnsafeMutableRawPointer?
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    init() {
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    func easy() -> UnsafeMutableRawPointer? {
        if raw == nil { raw = curl_easy_init() }
        return raw
    }

    /// libcurl's detailed message for the last transfer, or its generic one.
    func errorMessage(_ code: CURLcode) -> String {
        let detail = String(cString: errorBuffer)
        if !detail.isEmpty { return detail }
        return curl_easy_strerror(code).map { String(cString: $0) } ?? "curl error \(code.rawValue)"
    }

    deinit {
        if let raw { curl_easy_cleanup(raw) }
        errorBuffer.deallocate()
    }
}

/// What the callbacks of one transfer read and write. Lives on the worker thread
/// for exactly one `curl_easy_perform`.
final class TransferContext {
    let cancel: CancelFlag
    var isSMTP = false
    var body: [UInt8] = []
    var retryAfter: String?
    var replies: [String] = []
    var upload: [UInt8] = []
    var uploadOffset = 0
    /// nil: connect anywhere (the SMTP relay).
    var networkPolicy: OutboundNetworkPolicy?
    /// `address (scope)` of each connection the policy refused.
    var refusedAddresses: [String] = []
    var socketsOpened = 0

    init(cancel: CancelFlag) {
        self.cancel = cancel
    }

    var bodyExcerpt: String { Self.text(body) }
    /// The relay's reply that carried `status` (after a refusal libcurl still
    /// sends QUIT, so the last reply is usually just "221 bye").
    func reply(status: Int) -> String {
        let line = replies.last { $0.hasPrefix(String(status)) } ?? replies.last ?? ""
        return CurlWorker.bounded(line)
    }

    func appendBody(_ bytes: UnsafeRawBufferPointer) {
        let room = CurlTransport.excerptLimit - body.count
        if room > 0 { body += bytes.prefix(room) }
    }

    func header(_ line: String) {
        let trimmed = line.trimmingSpaces()
        guard !trimmed.isEmpty else { return }
        if isSMTP {
            // Keep the last few replies only: a long EHLO list is not interesting.
            replies.append(trimmed)
            if replies.count > 8 { replies.removeFirst() }
            return
        }
        if trimmed.hasPrefix("HTTP/") {
            retryAfter = nil  // a new response (after a 100 Continue, say) starts afresh
            return
        }
        guard let colon = trimmed.firstIndex(of: ":") else { return }
        if trimmed[..<colon].lowercased() == "retry-after" {
            retryAfter = String(trimmed[trimmed.index(after: colon)...]).trimmingSpaces()
        }
    }

    /// Valid UTF-8 without NUL (Postgres text cannot hold it).
    static func text(_ bytes: [UInt8]) -> String {
        var text = String(decoding: bytes.filter { $0 != 0 }, as: UTF8.self)
        while text.last == "\u{FFFD}" { text.removeLast() }
        return text
    }
}

/// A `curl_slist` built from Swift strings; freed by `free()`.
struct CurlStringList {
    private(set) var list: UnsafeMutablePointer<curl_slist>?

    mutating func append(_ text: String) {
        list = curl_slist_append(list, text)
    }

    mutating func free() {
        curl_slist_free_all(list)
        list = nil
    }
}

// MARK: - C callbacks (run on the worker thread inside curl_easy_perform)

private let curlWriteCallback: jobd_curl_data_callback = { buffer, size, count, context in
    let total = size * count
    guard let buffer, let context else { return total }
    let transfer = Unmanaged<TransferContext>.fromOpaque(context).takeUnretainedValue()
    transfer.appendBody(UnsafeRawBufferPointer(start: buffer, count: total))
    return total
}

private let curlHeaderCallback: jobd_curl_data_callback = { buffer, size, count, context in
    let total = size * count
    guard let buffer, let context else { return total }
    let transfer = Unmanaged<TransferContext>.fromOpaque(context).takeUnretainedValue()
    let bytes = UnsafeRawBufferPointer(start: buffer, count: min(total, 4_096))
    transfer.header(String(decoding: bytes, as: UTF8.self))
    return total
}

private let curlReadCallback: jobd_curl_data_callback = { buffer, size, count, context in
    guard let buffer, let context else { return 0 }
    let transfer = Unmanaged<TransferContext>.fromOpaque(context).takeUnretainedValue()
    let room = size * count
    let remaining = transfer.upload.count - transfer.uploadOffset
    let length = min(room, remaining)
    guard length > 0 else { return 0 }
    transfer.upload.withUnsafeBytes { source in
        UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + transfer.uploadOffset, byteCount: length)
    }
    transfer.uploadOffset += length
    return length
}

/// Runs before every connection libcurl makes (each address of each host, redirects
/// and reconnects included): refuses the ones the transfer's policy does not allow.
private let curlOpenSocketCallback: jobd_curl_opensocket_callback = { context, _, address in
    guard let context, let address else { return CURL_SOCKET_BAD }
    let transfer = Unmanaged<TransferContext>.fromOpaque(context).takeUnretainedValue()
    if let policy = transfer.networkPolicy {
        var raw = [UInt8](repeating: 0, count: 16)
        let length = Int(jobd_curl_sockaddr_bytes(address, &raw))
        guard let ip = IPAddress(bytes: Array(raw.prefix(length))) else {
            transfer.refusedAddresses.append("an address of family \(address.pointee.family)")
            return CURL_SOCKET_BAD
        }
        if case .refuse(let scope) = policy.decide(ip) {
            transfer.refusedAddresses.append("\(ip) (\(scope.rawValue))")
            return CURL_SOCKET_BAD
        }
    }
    let socket = jobd_curl_open_socket(address)
    if socket != CURL_SOCKET_BAD { transfer.socketsOpened += 1 }
    return socket
}

private let curlProgressCallback: jobd_curl_progress_callback = { context, _, _, _, _ in
    guard let context else { return 0 }
    return Unmanaged<TransferContext>.fromOpaque(context).takeUnretainedValue().cancel.isSet ? 1 : 0
}
