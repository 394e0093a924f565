import Configuration
import JobdCore
import SystemPackage

/// Reads `DaemonConfiguration` through swift-configuration: environment variables
/// (`JOBD_LEASE`) over a YAML file (`lease: 30`), validated by the pure core so
/// every bad value fails at start with a message naming its key.
enum ConfigurationLoader {
    static func load(_ options: GlobalOptions, environment: [String: String]? = nil) async throws -> DaemonConfiguration {
        try await loadWithValues(options, environment: environment).configuration
    }

    /// The configuration and the raw value of every key as read, so a reload can tell
    /// which keys changed (`ReloadPlan`).
    static func loadWithValues(
        _ options: GlobalOptions, environment: [String: String]? = nil
    ) async throws -> (configuration: DaemonConfiguration, values: [DaemonConfiguration.Key: String]) {
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
        let overrides: [DaemonConfiguration.Key: String] = [
            .logFormat: options.logFormat, .logLevel: options.logLevel,
        ].compactMapValues { $0 }
        var values: [DaemonConfiguration.Key: String] = [:]
        for key in DaemonConfiguration.Key.allCases {
            values[key] = overrides[key] ?? reader.string(forKey: ConfigKey(key.fileKey), isSecret: key.isSecret)
                // `schedules:` may also be a YAML list, one entry per item.
                ?? (key == .schedules ? reader.stringArray(forKey: ConfigKey(key.fileKey))?.joined(separator: "\n") : nil)
        }
        do {
            let configuration = try DaemonConfiguration.parse { [values] key in values[key] }
            return (configuration, values)
        } catch {
            throw CLIError("invalid configuration: \(error)")
        }
    }
}
