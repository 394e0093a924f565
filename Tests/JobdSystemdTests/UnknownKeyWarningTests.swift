import Foundation
import Testing

extension HostTests {
    /// The real `jobd run`: a misspelt environment variable or config-file key is
    /// named in a warning with the key it was probably meant to be, before anything
    /// else can fail.
    @Suite struct UnknownKeyWarningTests {
        @Test("unknown JOBD_* variables and config keys are warned about with the closest known key")
        func warnsWithClosestKey() async throws {
            let binary = try DaemonProcess.binary()
            let dir = try Host.makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let configPath = dir + "/jobd.yaml"
            try "workerz: 4\nlease: 30\nschedules: |\n  x = off\n".write(toFile: configPath, atomically: true, encoding: .utf8)
            let run = try DaemonProcess(binary: binary, arguments: ["run", "--config", configPath], environment: [
                // Nothing listens on port 1: the run fails after the configuration is read.
                "JOBD_DATABASE_URL": "postgresql://jobd@127.0.0.1:1/jobd?connect_timeout=2",
                "JOBD_LOG_FORMAT": "json", "JOBD_LEASEE": "5", "JOBD_POLL_INTERVALL": "1",
                "JOBD_TEST_SOMETHING": "1",
            ], dir: dir)
            let status = try await run.waitForExit(timeout: 30)
            #expect(status != 0)
            var warnings: [[String: String]] = []
            for line in run.stderr.split(separator: "\n") {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      object["message"] as? String == "unknown configuration key; ignored",
                      let metadata = object["metadata"] as? [String: String] else { continue }
                #expect(object["level"] as? String == "warning")
                warnings.append(metadata)
            }
            #expect(warnings.count == 3, "\(run.stderr)")
            #expect(warnings.contains(["key": "JOBD_LEASEE", "closest": "JOBD_LEASE", "source": "environment"]), "\(warnings)")
            #expect(warnings.contains(["key": "JOBD_POLL_INTERVALL", "closest": "JOBD_POLL_INTERVAL", "source": "environment"]))
            #expect(warnings.contains(["key": "workerz", "closest": "workers", "source": "file"]), "\(warnings)")
        }
    }
}
