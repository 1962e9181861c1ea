//! The applier: what the controller asks of nginx, behind a trait so the controller's
//! decisions can be unit-tested with a double. The real one is [`Nginx`]; integration tests
//! always use it.

use std::future::Future;
use std::path::Path;

use bollard::Docker;

use crate::nginx::{Nginx, NginxError};
use crate::nginx_version::Probe;

/// Makes configs live in nginx (see [`Nginx::apply`] and [`Nginx::check`]).
pub trait Applier {
    /// True when nginx runs in a container that must be found in the inventory.
    fn in_container(&self) -> bool;

    /// The Docker client to reach an nginx container with (after each (re)connect).
    fn set_docker(&mut self, docker: Docker);

    /// The nginx container's id, as found in the inventory (`None`: not running).
    fn set_container(&mut self, id: Option<String>);

    /// Writes, validates and reloads `text` at `conf`; `Ok(false)`: already live, not forced.
    fn apply(
        &self,
        conf: &Path,
        text: &str,
        force_reload: bool,
    ) -> impl Future<Output = Result<bool, NginxError>> + Send;

    /// Whether nginx would accept `text` at `conf`; nothing is made live or reloaded.
    fn check(&self, conf: &Path, text: &str)
    -> impl Future<Output = Result<(), NginxError>> + Send;

    /// Asks nginx its version into `probe` unless this nginx was already asked.
    fn probe_version<'a>(&'a self, probe: &'a mut Probe) -> impl Future<Output = ()> + Send + 'a;
}

impl Applier for Nginx {
    fn in_container(&self) -> bool {
        self.is_container()
    }

    fn set_docker(&mut self, docker: Docker) {
        Nginx::set_docker(self, docker);
    }

    fn set_container(&mut self, found: Option<String>) {
        Nginx::set_container(self, found);
    }

    fn apply(
        &self,
        conf: &Path,
        text: &str,
        force_reload: bool,
    ) -> impl Future<Output = Result<bool, NginxError>> + Send {
        Nginx::apply(self, conf, text, force_reload)
    }

    fn check(
        &self,
        conf: &Path,
        text: &str,
    ) -> impl Future<Output = Result<(), NginxError>> + Send {
        Nginx::check(self, conf, text)
    }

    fn probe_version<'a>(&'a self, probe: &'a mut Probe) -> impl Future<Output = ()> + Send + 'a {
        probe.refresh(self)
    }
}
