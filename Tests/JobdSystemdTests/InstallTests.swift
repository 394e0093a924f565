import Foundation
import JobdCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension HostTests {
    /// `scripts/install` staged into a directory (DESTDIR), then checked with systemd's
    /// own tools run against that root: the user it declares, the config's ownership,
    /// and the catalog entries journalctl indexes.
    @Suite struct InstallTests {
        static let tools = ["systemd-sysusers", "systemd-tmpfiles", "journalctl"].allSatisfy { Host.which($0) != nil }

        @Test(.enabled(if: tools, "SKIPPED: systemd-sysusers, systemd-tmpfiles or journalctl is not installed"))
        func stagedInstall() throws {
            let binary = try DaemonProcess.binary()
            let stage = try Host.makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: stage) }
            let script = Host.packageRoot.appendingPathComponent("scripts/install").path
            let install = try Host.run("/usr/bin/env", ["DESTDIR=\(stage)", "bash", script, "--binary", binary])
            #expect(install.status == 0, "\(install.stderr)")
            #expect(install.stdout.contains("staged under \(stage)"))

            func mode(_ path: String) -> Int? {
                var info = stat()
                return stat(stage + path, &info) == 0 ? Int(info.st_mode & 0o7777) : nil
            }
            #expect(mode("/usr/local/bin/jobd") == 0o755)
            #expect(mode("/etc/systemd/system/jobd.service") == 0o644)
            #expect(mode("/etc/jobd") == 0o750)
            #expect(mode("/etc/jobd/jobd.yaml") == 0o640, "the config holds passwords")
            #expect(mode("/usr/local/share/doc/jobd/README.md") == 0o644)
            let unit = try String(contentsOfFile: stage + "/etc/systemd/system/jobd.service", encoding: .utf8)
            #expect(unit == (try String(contentsOf: Host.unitFile, encoding: .utf8)))

            // A second run keeps an edited config.
            try "workers: 3\n".write(toFile: stage + "/etc/jobd/jobd.yaml", atomically: false, encoding: .utf8)
            let again = try Host.run("/usr/bin/env", ["DESTDIR=\(stage)", "bash", script, "--binary", binary])
            #expect(again.status == 0)
            #expect(try String(contentsOfFile: stage + "/etc/jobd/jobd.yaml", encoding: .utf8) == "workers: 3\n")

            // The declared user exists once sysusers runs on that root, and tmpfiles gives
            // the config to it: root:jobd 0640.
            let sysusers = try Host.run(Host.which("systemd-sysusers")!, ["--root=\(stage)"])
            #expect(sysusers.status == 0, "\(sysusers.stderr)")
            let group = try String(contentsOfFile: stage + "/etc/group", encoding: .utf8)
            let gid = try #require(group.split(separator: "\n").first { $0.hasPrefix("jobd:") }
                .flatMap { $0.split(separator: ":", omittingEmptySubsequences: false).dropFirst(2).first }
                .flatMap { UInt32($0) })
            let passwd = try String(contentsOfFile: stage + "/etc/passwd", encoding: .utf8)
            #expect(passwd.contains("jobd:x:"))
            #expect(passwd.contains(":/usr/sbin/nologin"))
            let tmpfiles = try Host.run(Host.which("systemd-tmpfiles")!, ["--root=\(stage)", "--create"])
            #expect(tmpfiles.status == 0, "\(tmpfiles.stderr)")
            var info = stat()
            #expect(stat(stage + "/etc/jobd/jobd.yaml", &info) == 0)
            #expect(info.st_uid == 0)
            #expect(info.st_gid == gid)
            #expect(info.st_mode & 0o7777 == 0o640)

            // Every MESSAGE_ID the daemon logs is in the installed catalog.
            let journalctl = Host.which("journalctl")!
            #expect(try Host.run(journalctl, ["--root=\(stage)", "--update-catalog"]).status == 0)
            let catalog = try Host.run(journalctl, ["--root=\(stage)", "--list-catalog"])
            for id in JobdMessageID.allCases {
                #expect(catalog.stdout.contains(id.id + " jobd: "), "catalog entry for \(id)")
            }
        }
    }
}
