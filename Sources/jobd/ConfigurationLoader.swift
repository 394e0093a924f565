import Configuration
import Foundation
import JobdAssembly
import JobdCore
import Logging
import SystemPackage

/// Reads `JobdSettings` through swift-configuration: environment variables
/// (`JOBD_LEASE`) over a YAML file (`lease: 30`), for every key a tier declares
/// (`JobdSettings.keys`), validated by the tier that owns each key so every bad value
/// fails at start with a message naming its key.
enum ConfigurationLoader {
    static func load(_ options: GlobalOptions, environment: [String: String]? = nil) async throws -> JobdSettings {
        try await loadWithValues(options, environment: environment).configuration
    }

    /// `JOBD_*` environment variables and config-file keys the daemon does not read,
    /// each with its closest known key. A file that cannot be read yields none here:
    /// `load` reports that file itself.
    static func unknownKeys(
        _ options: GlobalOptions, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> [ConfigurationKeyCheck.Unknown] {
        var unknown = ConfigurationKeyCheck.unknownEnvironment(
            environment.keys, known: JobdSettings.keys.environmentNames)
        if let path = options.config, let data = FileManager.default.contents(atPath: path) {
            unknown += ConfigurationKeyCheck.unknownFileKeys(
                String(decoding: data, as: UTF8.self), known: JobdSettings.keys.fileNames)
        }
        return unknown
    }

    /// Logs one warning per unknown name (fixed message; the name, its closest known
    /// key and where it was found as metadata).
    static func warnUnknownKeys(_ options: GlobalOptions, logger: Logger) {
        for entry in unknownKeys(options) {
            logger.warning("unknown configuration key; ignored", metadata: [
                "key": "\(entry.name)", "closest": "\(entry.closest)", "source": "\(entry.source.rawValue)",
            ])
        }
    }

    /// The configuration and the raw value of every key as read, so a reload can tell
    /// which keys changed (`ReloadPlan`).
    static func loadWithValues(
        _ options: GlobalOptions, environment: [String: String]? = nil
    ) async throws -> (configuration: JobdSettings, values: [ConfigurationKey: String]) {
        var providers: [any ConfigProvider] = []
        let env = environment.map { EnvironmentVariablesProvider(environmentVariables: $0) } ?? EnvironmentVariablesProvider()
        providers.append(env.prefixKeys(with: "jobd"))
        if let path = options.config {
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(path)))
            } catch {
                throw CLIError("config file \(path): \(error)")
            }
        }
        let reader = ConfigReader(providers: providers)
        // Command-line flags win over environment and file.
        let overrides: [ConfigurationKey: String] = [
            .logFormat: options.logFormat, .logLevel: options.logLevel,
        ].compactMapValues { $0 }
        var values: [ConfigurationKey: String] = [:]
        for key in JobdSettings.keys {
            values[key] = overrides[key] ?? reader.string(forKey: ConfigKey(key.fileKey), isSecret: key.isSecret)
                // `schedules:` may also be a YAML list, one entry per item.
                ?? (key == .schedules ? reader.stringArray(forKey: ConfigKey(key.fileKey))?.joined(separator: "\n") : nil)
        }
        do {
            let configuration = try JobdSettings.read { [values] key in values[key] }
            return (configuration, values)
        } catch {
            throw CLIError("invalid configuration: \(error)")
        }
    }
}
