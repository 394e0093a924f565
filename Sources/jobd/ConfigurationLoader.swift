import Configuration
import JobdCore
import SystemPackage

/// Reads `DaemonConfiguration` through swift-configuration: environment variables
/// (`JOBD_LEASE`) over a YAML file (`lease: 30`), validated by the pure core so
/// every bad value fails at start with a message naming its key.
enum ConfigurationLoader {
    static func load(_ options: GlobalOptions, environment: [String: String]? = nil) async throws -> DaemonConfiguration {
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
        do {
            return try DaemonConfiguration.parse { key in
                overrides[key] ?? reader.string(forKey: ConfigKey(key.fileKey), isSecret: key.isSecret)
                    // `schedules:` may also be a YAML list, one entry per item.
                    ?? (key == .schedules ? reader.stringArray(forKey: ConfigKey(key.fileKey))?.joined(separator: "\n") : nil)
            }
        } catch {
            throw CLIError("invalid configuration: \(error)")
        }
    }
}
