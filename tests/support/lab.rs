//! The built-in lab in-process, for tests: [`start`] on the test's own tokio runtime, and [`TestLab`] with a runtime
//! of its own for tests whose thread blocks on a child process.

use std::net::SocketAddr;

use imapref::lab::{Lab, LabConfig, Scenario};

/// Starts `scenario` on ephemeral loopback ports; panics when the lab cannot start.
pub async fn start(scenario: Scenario) -> Lab {
    Lab::start(LabConfig {
        scenario,
        ..LabConfig::default()
    })
    .await
    .expect("the lab starts")
}

/// The lab on a runtime of its own; stopped when dropped.
pub struct TestLab {
    rt: tokio::runtime::Runtime,
    /// The running lab.
    pub lab: Option<Lab>,
}

impl TestLab {
    /// Starts a lab with `config`.
    pub fn with(config: LabConfig) -> TestLab {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let lab = rt.block_on(Lab::start(config)).expect("the lab starts");
        TestLab { rt, lab: Some(lab) }
    }

    /// A lab of the default scenario (the KB's).
    pub fn start() -> TestLab {
        TestLab::with(LabConfig::default())
    }

    /// The front server's plain address.
    pub fn front(&self) -> SocketAddr {
        self.lab.as_ref().expect("running").front().plain
    }

    /// The home server's plain address.
    pub fn home(&self) -> SocketAddr {
        self.lab
            .as_ref()
            .and_then(|l| l.server("home"))
            .expect("a home server")
            .plain
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        if let Some(lab) = self.lab.take() {
            self.rt.block_on(lab.shutdown());
        }
    }
}
