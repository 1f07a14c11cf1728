//! Starting and restarting the simulated node: one data directory, the
//! virtual clock, and randomness derived from the seed and the restart
//! count (so a restart is as reproducible as the first start). Its service
//! directory accredits every organisation of the population for PDS
//! ([`crate::services::directory`], the same one `spine-sim directory`
//! writes for a live node).

use std::sync::Arc;
use std::time::Duration;

use spine_actors::node::{Node, NodeHandle, NodeParts, RuntimeConfig, StorageConfig};
use spine_core::directory::Directory;
use spine_core::random::SeededRandom;
use spine_core::time::ManualClock;

use super::{DriverConfig, Storage};

/// The simulated node and what it needs to restart.
pub(crate) struct SimNode {
    pub(crate) handle: NodeHandle,
    storage: StorageConfig,
    runtime: RuntimeConfig,
    directory: Arc<Directory>,
    clock: Arc<ManualClock>,
    seed: u64,
    starts: u64,
    durable: bool,
    _temp: Option<tempfile::TempDir>,
}

impl SimNode {
    pub(crate) async fn start(
        config: &DriverConfig,
        directory: Arc<Directory>,
        clock: Arc<ManualClock>,
    ) -> anyhow::Result<SimNode> {
        let (data_dir, temp, durable) = match &config.storage {
            Storage::Disk(Some(dir)) => (dir.clone(), None, true),
            Storage::Disk(None) => {
                let t = tempfile::tempdir()?;
                (t.path().to_path_buf(), Some(t), true)
            }
            Storage::Memory => (std::path::PathBuf::new(), None, false),
        };
        let storage = StorageConfig {
            data_dir,
            inbox_expiry: config.inbox_expiry,
            purge_after: config
                .inbox_expiry
                .saturating_mul(6)
                .max(Duration::from_secs(86_400)),
            ..StorageConfig::default()
        };
        let runtime = RuntimeConfig {
            partitions: config.partitions,
            // The driver runs expiry and compaction itself, in virtual time.
            expiry_interval_ms: 3_600_000,
            compaction_check_ms: 3_600_000,
            max_restarts: 1000,
            restart_window_secs: 1,
            // Every organisation of the population may look patients up.
            service_directory: Some(Arc::new(crate::services::directory(
                directory.mailboxes().map(|m| m.ods_code.clone()),
            )?)),
            ..RuntimeConfig::default()
        };
        let mut node = SimNode {
            handle: start(
                &storage,
                &runtime,
                &directory,
                &clock,
                config.seed,
                0,
                durable,
            )
            .await?,
            storage,
            runtime,
            directory,
            clock,
            seed: config.seed,
            starts: 1,
            durable,
            _temp: temp,
        };
        node.starts = 1;
        Ok(node)
    }

    pub(crate) fn durable(&self) -> bool {
        self.durable
    }

    /// Stops the node and starts it again from its log.
    pub(crate) async fn restart(&mut self) -> anyhow::Result<()> {
        // A node whose log failed cannot sync on the way down: that is the
        // point of the drill, not an error of the run.
        let _ = self.handle.shutdown().await;
        self.handle = start(
            &self.storage,
            &self.runtime,
            &self.directory,
            &self.clock,
            self.seed,
            self.starts,
            self.durable,
        )
        .await?;
        self.starts += 1;
        Ok(())
    }

    pub(crate) async fn stop(self) {
        let _ = self.handle.shutdown().await;
    }
}

async fn start(
    storage: &StorageConfig,
    runtime: &RuntimeConfig,
    directory: &Arc<Directory>,
    clock: &Arc<ManualClock>,
    seed: u64,
    starts: u64,
    durable: bool,
) -> anyhow::Result<NodeHandle> {
    let parts = NodeParts {
        runtime: runtime.clone(),
        directory: Arc::clone(directory),
        clock: Arc::clone(clock) as _,
        rng: Box::new(SeededRandom::new(
            seed ^ 0x5EED_0F1D ^ starts.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )),
    };
    if durable {
        let (handle, _) = Node::start(storage.clone(), parts).await?;
        Ok(handle)
    } else {
        Ok(Node::start_in_memory(storage.clone(), parts).await?)
    }
}
