import JobdAssembly
import JobdCore
import JobdQueue
import JobdSystemd
import Logging
import UnixSignals

/// Applies SIGHUP reloads (`systemctl reload jobd`): RELOADING=1, re-read the
/// configuration file, apply what can change live, say what needs a restart,
/// READY=1. A file that no longer parses changes nothing and is logged as an error.
struct ConfigurationReloader: Sendable {
    typealias Key = ConfigurationKey

    let global: GlobalOptions
    let daemon: JobDaemon
    let notifier: SystemdNotifier
    let logger: Logger

    func run(initial: [Key: String]) async {
        var running = initial
        for await _ in await UnixSignalsSequence(trapping: .sighup) {
            _ = notifier.reloading()
            running = await reload(running: running)
            _ = notifier.ready()
        }
    }

    /// Returns the raw values now in effect: changed keys that were not applied keep
    /// their running value, so the next reload reports them again.
    func reload(running: [Key: String]) async -> [Key: String] {
        let loaded: (configuration: JobdSettings, values: [Key: String])
        do {
            loaded = try await ConfigurationLoader.loadWithValues(global)
        } catch {
            logger.error("configuration reload failed; the running configuration stays", metadata: [
                LogKey.error: "\(error)",
            ])
            return running
        }
        let plan = ReloadPlan(old: running, new: loaded.values, keys: JobdSettings.keys)
        var effective = running
        var applied: [Key] = []
        var needRestart = plan.needRestart
        for key in plan.live {
            switch key {
            case .logLevel:
                Connections.logLevel.level = Logger.Level(rawValue: loaded.configuration.logLevel) ?? .info
            case .workers:
                guard daemon.resize(workers: loaded.configuration.workers) else {
                    needRestart.append(key)
                    continue
                }
            default:
                needRestart.append(key)
                continue
            }
            effective[key] = loaded.values[key]
            applied.append(key)
        }
        // Key names only: values may be secrets.
        logger.notice("configuration reloaded", metadata: [
            LogKey.messageID: "\(JobdMessageID.configurationReloaded.id)",
            "applied": "\(applied.map(\.rawValue).joined(separator: ","))",
            "restart_required": "\(needRestart.map(\.rawValue).joined(separator: ","))",
        ])
        return effective
    }
}
