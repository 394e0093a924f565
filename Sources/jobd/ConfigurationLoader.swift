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
        do {
            var config = try DaemonConfiguration.parse { key in
                reader.string(forKey: ConfigKey(key.fileKey), isSecret: key.isSecret)
            }
            if let format = options.logFormat {
                config = try DaemonConfiguration.parse { key in
                    key == .logFormat ? format : reader.string(forKey: ConfigKey(key.fileKey), isSecret: key.isSecret)
                }
            }
            if let level = options.logLevel {
                let format = config.logFormat
                config = try DaemonConfiguration.parse { key in
                    switch key {
                    case .logLevel: level
                    case .logFormat: format
                    default: reader.string(forKey: ConfigKey(key.fileKey), isSecret: key.isSecret)
                    }
                }
            }
            return config
        } catch {
            throw CLIError("invalid configuration: \(error)")
        }
    }
}
