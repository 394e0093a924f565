import Foundation
import JobdCore
import JobdSystemd
import Testing

extension HostTests {
    /// Checks the shipped unit and catalog with systemd's own tools (skipped where they are absent).
    @Suite struct SystemdUnitFileTests {
        static let analyze = Host.which("systemd-analyze")
        static let journalctl = Host.which("journalctl")

        @Test(.enabled(if: analyze != nil, "SKIPPED: systemd-analyze is not installed"))
        func securityExposureIsAtMost1_5() throws {
            let result = try Host.run(Self.analyze!, ["security", "--offline=true", Host.unitFile.path])
            #expect(result.status == 0, "\(result.stderr)")
            // "→ Overall exposure level for jobd.service: 1.1 OK 🙂"
            let summary = try #require(
                result.stdout.split(separator: "\n").first { $0.contains("Overall exposure level for jobd.service:") },
                "no summary line in: \(result.stdout)\(result.stderr)"
            )
            let afterColon = summary.split(separator: ":").last ?? ""
            let score = try #require(afterColon.split(separator: " ").first.flatMap { Double($0) }, "\(summary)")
            #expect(score <= 1.5, "\(summary)")
        }

        /// verify checks that ExecStart exists, so a temp copy runs /bin/true instead of jobd.
        @Test(.enabled(if: analyze != nil, "SKIPPED: systemd-analyze is not installed"))
        func verifyIsClean() throws {
            let unit = try String(contentsOf: Host.unitFile, encoding: .utf8)
            #expect(unit.contains("\nExecStart=/usr/local/bin/jobd run --config /etc/jobd/jobd.yaml\n"))
            let copy = unit.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.hasPrefix("ExecStart=") ? "ExecStart=/bin/true" : String($0) }
                .joined(separator: "\n")
            let dir = try Host.makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = dir + "/jobd.service"
            try copy.write(toFile: path, atomically: true, encoding: .utf8)

            let result = try Host.run(Self.analyze!, ["verify", path])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.isEmpty && result.stderr.isEmpty, "verify printed: \(result.stdout)\(result.stderr)")
        }

        /// The unit never lets the daemon reach link-local addresses (the cloud metadata
        /// service) or multicast, and no allow list in the shipped unit overrides that
        /// (systemd lets an IPAddressAllow= match win over IPAddressDeny=).
        @Test func deniesLinkLocalAndMulticast() throws {
            let unit = try String(contentsOf: Host.unitFile, encoding: .utf8)
            let lines = unit.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            let denied = lines.filter { $0.hasPrefix("IPAddressDeny=") }
                .flatMap { $0.dropFirst("IPAddressDeny=".count).split(separator: " ").map(String.init) }
            for range in ["169.254.0.0/16", "fe80::/10", "224.0.0.0/4", "ff00::/8"] {
                #expect(denied.contains(range), "IPAddressDeny= lacks \(range): \(denied)")
            }
            #expect(!lines.contains { $0.hasPrefix("IPAddressAllow=") }, "an allow list would override the deny list")
        }

        @Test func catalogHasOneEntryPerMessageID() throws {
            let catalog = try String(contentsOf: Host.catalogFile, encoding: .utf8)
            let entries = catalog.components(separatedBy: "\n-- ").dropFirst()
            let ids = entries.map { String($0.prefix(32)) }
            #expect(Set(ids) == Set(JobdMessageID.allCases.map(\.id)))
            #expect(ids.count == JobdMessageID.allCases.count)
            for entry in entries {
                #expect(entry.contains("\nSubject: "), "\(entry.prefix(40))")
                #expect(entry.contains("\nDefined-By: jobd\n"), "\(entry.prefix(40))")
                #expect(entry.contains("\nDocumentation: "), "\(entry.prefix(40))")
            }
        }

        /// journalctl compiles the catalog into a temp root and lists it back.
        @Test(.enabled(if: journalctl != nil, "SKIPPED: journalctl is not installed"))
        func journalctlAcceptsCatalog() throws {
            let root = try Host.makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: root) }
            let catalogDir = root + "/usr/lib/systemd/catalog"
            try FileManager.default.createDirectory(atPath: catalogDir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Host.catalogFile.path, toPath: catalogDir + "/jobd.catalog")

            let update = try Host.run(Self.journalctl!, ["--root=" + root, "--update-catalog"])
            #expect(update.status == 0 && update.stderr.isEmpty, "\(update.stderr)")
            let list = try Host.run(Self.journalctl!, ["--root=" + root, "--list-catalog"])
            #expect(list.status == 0, "\(list.stderr)")
            for id in JobdMessageID.allCases {
                #expect(list.stdout.contains("\(id.id) jobd: "), "\(id) missing from: \(list.stdout)")
            }
        }
    }
}
