import Foundation
import JobdTestSupport
import Testing

extension HostTests {
    /// `jobd bench --quick` end to end on a small scale: every section present, every
    /// rate positive. (A smoke test of the benchmark; its figures are not asserted.)
    @Suite struct BenchSmokeTests {
        @Test func quickBenchProducesEverySection() async throws {
            let binary = try DaemonProcess.binary()
            let database = try await TestDatabase.create()
            let redis = try TestEnvironment.redisURL()
            let dir = try Host.makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let output = dir + "/bench.json"
            let run = try DaemonProcess(
                binary: binary,
                arguments: [
                    "bench", "--quick", "--drain-jobs", "600", "--workers", "1,8", "--backlogs", "2000", "--json", output,
                    "--corpus", Host.packageRoot.appendingPathComponent("Tests/Fixtures/mail-corpus").path,
                    "--notify-sink", Host.packageRoot.appendingPathComponent("scripts/notify-sink").path,
                    "--campaign-sink", Host.packageRoot.appendingPathComponent("scripts/smtp-sink").path,
                    "--campaign-contacts", "300",
                ],
                environment: [
                    "JOBD_DATABASE_URL": database.url,
                    "JOBD_REDIS_URL": "redis://\(redis.host):\(redis.port)/\(redis.database)",
                    "JOBD_REDIS_PREFIX": "bench-\(UInt32.random(in: 0...UInt32.max))",
                ],
                dir: dir)
            let status = try await run.waitForExit(timeout: 180)
            #expect(status == 0, "\(run.stderr)")
            let data = try Data(contentsOf: URL(fileURLWithPath: output))
            let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let enqueue = try #require(json["enqueue"] as? [String: Any])
            #expect((enqueue["singleRowPerSecond"] as? Double ?? 0) > 0)
            #expect((enqueue["bulkPerSecond"] as? Double ?? 0) > 0)
            let drain = try #require(json["drain"] as? [[String: Any]])
            #expect(drain.map { $0["workers"] as? Int } == [1, 8])
            #expect(drain.allSatisfy { ($0["jobsPerSecond"] as? Double ?? 0) > 0 })
            #expect(drain.allSatisfy { ($0["postgresRoundTripsPerJob"] as? Double ?? 0) > 0 })
            #expect(drain.allSatisfy { ($0["cpuSecondsPer1000"] as? Double ?? 0) > 0 && ($0["peakRSSMiB"] as? Double ?? 0) > 0 })
            // The test servers run on this host, so the server CPU is visible.
            #expect(drain.allSatisfy { ($0["redisCPUSecondsPer1000"] as? Double ?? -1) >= 0 })
            // The writes section, counted: each job leaves one ledger row, written when its
            // attempt ends (none at the claim).
            let writes = try #require(json["writes"] as? [String: Any])
            let tables = (writes["tables"] as? [[String: Any]] ?? []).reduce(into: [String: [String: Any]]()) {
                if let name = $1["table"] as? String { $0[name] = $1 }
            }
            #expect(tables["queue.attempts"]?["insertedPerJob"] as? Double == 1, "\(writes)")
            #expect((tables["queue.jobs"]?["updatedPerJob"] as? Double ?? 0) >= 1, "\(writes)")
            #expect((writes["walBytesPerJob"] as? Double ?? 0) > 0 && (writes["postgresRoundTripsPerJob"] as? Double ?? 0) > 0)
            let latency = try #require(json["latency"] as? [[String: Any]])
            #expect(latency.map { $0["offeredPercent"] as? Int } == [10, 50, 90])
            #expect(latency.allSatisfy { ($0["jobs"] as? Int ?? 0) > 0 && ($0["p99Ms"] as? Double ?? -1) >= ($0["p50Ms"] as? Double ?? 0) })
            let pickup = try #require(json["idlePickup"] as? [String: Any])
            #expect((pickup["samples"] as? Int ?? 0) > 0)
            let scale = try #require(json["scale"] as? [[String: Any]])
            #expect(scale.first?["backlog"] as? Int == 2000)
            #expect((scale.first?["jobsPerSecond"] as? Double ?? 0) > 0)
            // Five windows (one round in quick mode), the reported rate their median.
            let windows = try #require(scale.first?["windowRates"] as? [Double])
            #expect(windows.count == 5 && windows.allSatisfy { $0 > 0 })
            #expect(scale.first?["jobsPerSecond"] as? Double == windows.sorted()[2])
            // content.write over the mail corpus, notification.send to the loopback sink.
            let tiers = try #require(json["tierKinds"] as? [String: [String: Any]])
            let content = try #require(tiers["content.write"])
            #expect(content["status"] as? String == "measured", "\(content)")
            #expect((content["perSecond"] as? Double ?? 0) > 0)
            #expect(((content["figures"] as? [String: Any])?["compressionRatio"] as? Double ?? 0) > 1)
            let notify = try #require(tiers["notification.send"])
            #expect(notify["status"] as? String == "measured", "\(notify)")
            #expect((notify["perSecond"] as? Double ?? 0) > 0)
            // Every job's webhook reached the sink (at least once).
            let received = (notify["figures"] as? [String: Any])?["webhooksReceived"] as? Double ?? 0
            #expect(received >= Double(notify["jobs"] as? Int ?? .max))
            // Autoscale (quick: bounds 1-8 against a fixed 8, 1 s quiet period): both runs
            // saw the step, the autoscaled pool grew under it and came back to 1 after it.
            let autoscale = try #require(json["autoscale"] as? [String: Any])
            let runs = try #require(autoscale["runs"] as? [[String: Any]])
            #expect(runs.map { $0["workers"] as? String } == ["1-8", "8"])
            #expect(runs.map { $0["autoscaled"] as? Bool } == [true, false])
            for run in runs {
                let stepJobs = run["stepJobs"] as? Int ?? 0
                #expect(stepJobs > 0 && (run["jobs"] as? Int ?? 0) > stepJobs, "\(run)")
                #expect((run["steadyPerSecond"] as? Double ?? 0) > 0, "\(run)")
                let p50 = run["queueWaitP50Ms"] as? Double ?? -1, p99 = run["queueWaitP99Ms"] as? Double ?? -1
                #expect(p50 >= 0 && p99 >= p50 && (run["queueWaitMaxMs"] as? Double ?? -1) >= p99, "\(run)")
                #expect((run["cpuSecondsPer1000"] as? Double ?? 0) > 0)
                // [seconds, jobs/s, slots] rows, slots within the bounds.
                let timeline = try #require(run["timeline"] as? [[Double]])
                #expect(!timeline.isEmpty && timeline.allSatisfy { $0.count == 3 && $0[2] >= 1 && $0[2] <= 8 }, "\(timeline)")
            }
            #expect((runs.first?["peakWorkers"] as? Int ?? 0) > 1, "the autoscaled pool grew: \(runs[0])")
            #expect(runs.last?["peakWorkers"] as? Int == 8)
            #expect((autoscale["fixedDrainPerSecond"] as? Double ?? 0) > 0)
            #expect((autoscale["secondsToMinimum"] as? Double ?? -1) >= 0, "back at 1 after the load: \(autoscale)")
            #expect(autoscale["queueWaitP99Ratio"] is Double)
            let burst = try #require(autoscale["burst"] as? [String: Any])
            #expect((burst["idleP99Ms"] as? Double ?? 0) > 0 && (burst["busyP99Ms"] as? Double ?? 0) > 0, "\(burst)")
            #expect(burst["lowMaximum"] as? Int == 2)
            #expect((burst["lowBusyAtBurst"] as? [Int])?.count == burst["rounds"] as? Int)
            // Every target of the issue is evaluated, and each measured one has a verdict.
            let targets = try #require(json["targets"] as? [[String: Any]])
            #expect(targets.count == 20)
            // The campaigns section ran (its counts are checked by campaignsSectionCounts).
            let campaigns = try #require(json["campaigns"] as? [String: Any])
            #expect(campaigns["sent"] as? Int == 294 && campaigns["sinkMessages"] as? Int == 294, "\(campaigns)")
            #expect(targets.filter { $0["met"] is Bool }.count >= 13)
            let autoscaleTargets = targets.filter { ($0["name"] as? String ?? "").hasPrefix("autoscale:")
                || ($0["name"] as? String ?? "").hasPrefix("burst:") }
            #expect(autoscaleTargets.count == 4 && autoscaleTargets.allSatisfy { $0["met"] is Bool }, "\(autoscaleTargets)")
            // The tier kinds ran, so their three targets have verdicts.
            let tierTargets = targets.filter { ($0["name"] as? String ?? "").hasPrefix("content.write")
                || ($0["name"] as? String ?? "").hasPrefix("notification.send") }
            #expect(tierTargets.count == 3 && tierTargets.allSatisfy { $0["met"] is Bool }, "\(tierTargets)")
            // The queue is left empty.
            let sql = database.connection()
            #expect(try await sql.query("SELECT count(*) FROM queue.jobs").rows.first?.first == "0")
            await sql.close()
            await database.drop()
        }

        /// `jobd bench --sections campaigns` on a 600-contact list: the section's own
        /// counts are exact (every subscribed contact sent once, the 12 not subscribed
        /// suppressed, the sink received exactly the recipients), its figures present,
        /// and its workspace deleted after.
        @Test func campaignsSectionCounts() async throws {
            let binary = try DaemonProcess.binary()
            let database = try await TestDatabase.create()
            let redis = try TestEnvironment.redisURL()
            let dir = try Host.makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let output = dir + "/bench.json"
            let run = try DaemonProcess(
                binary: binary,
                arguments: [
                    "bench", "--quick", "--sections", "campaigns", "--campaign-contacts", "600", "--json", output,
                    "--campaign-sink", Host.packageRoot.appendingPathComponent("scripts/smtp-sink").path,
                ],
                environment: [
                    "JOBD_DATABASE_URL": database.url,
                    "JOBD_REDIS_URL": "redis://\(redis.host):\(redis.port)/\(redis.database)",
                    "JOBD_REDIS_PREFIX": "bench-\(UInt32.random(in: 0...UInt32.max))",
                ],
                dir: dir)
            let status = try await run.waitForExit(timeout: 180)
            #expect(status == 0, "\(run.stderr)")
            let data = try Data(contentsOf: URL(fileURLWithPath: output))
            let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect(json["sections"] as? [String] == ["campaigns"])
            let c = try #require(json["campaigns"] as? [String: Any])
            // Contacts 1…600: i % 100 == 50 unsubscribed, == 99 bounced.
            #expect(c["contacts"] as? Int == 600 && c["suppressed"] as? Int == 12 && c["recipients"] as? Int == 588, "\(c)")
            #expect(c["sent"] as? Int == 588 && c["suppressedDeliveries"] as? Int == 12, "\(c)")
            #expect(c["sinkMessages"] as? Int == 588 && c["sinkRecipients"] as? Int == 588, "\(c)")
            #expect(c["sinkDuplicates"] as? Int == 0 && c["sinkToSuppressed"] as? Int == 0, "\(c)")
            // One page of 600 members: its 588 pending deliveries in jobs of 100.
            #expect(c["deliveryJobs"] as? Int == 6, "\(c)")
            for key in ["importSeconds", "fanOutSeconds", "deliverySeconds", "recipientsPerSecond", "scheduleToSentSeconds",
                        "peakRSSFanOutMiB", "peakRSSMiB", "lookupP50Ms"] {
                #expect((c[key] as? Double ?? 0) > 0, "\(key): \(c)")
            }
            #expect((c["scheduleToSentSeconds"] as? Double ?? 0) >= (c["fanOutSeconds"] as? Double ?? .infinity), "\(c)")
            #expect((c["peakRSSMiB"] as? Double ?? 0) >= (c["peakRSSFanOutMiB"] as? Double ?? .infinity), "\(c)")
            #expect(c["lookups"] as? Int == 1_000)
            #expect((c["lookupP99Ms"] as? Double ?? 0) >= (c["lookupP50Ms"] as? Double ?? .infinity), "\(c)")
            // Its four targets are listed; below their scale they have no verdict.
            let targets = try #require(json["targets"] as? [[String: Any]])
            let campaignTargets = targets.filter {
                let name = $0["name"] as? String ?? ""
                return name.hasPrefix("campaign") || name.hasPrefix("contact lookup")
            }
            #expect(campaignTargets.count == 4 && campaignTargets.allSatisfy { !($0["met"] is Bool) }, "\(campaignTargets)")
            // The bench's workspace (and its contacts) is gone, the queue empty.
            let sql = database.connection()
            #expect(try await sql.query("SELECT count(*) FROM oltp.contacts").rows.first?.first == "0")
            #expect(try await sql.query("SELECT count(*) FROM oltp.workspaces").rows.first?.first == "0")
            #expect(try await sql.query("SELECT count(*) FROM queue.jobs").rows.first?.first == "0")
            await sql.close()
            await database.drop()
        }
    }
}
