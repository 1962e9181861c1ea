//! Validation: `nginx -t` on the candidate beside the live file, through a test main config
//! that includes it in the live file's place; the old in-place check when that can't be derived.

use std::path::Path;

use super::{Nginx, NginxError, Target};
use crate::nginxfs::{list, write_err, write_file};
use crate::nginxpaths::{candidate_path, sibling, with_conf};
use crate::nginxrun::{self, run_local};
use crate::testconf;

impl Nginx {
    /// Asks nginx whether it would accept `text` at `conf`; the live file is untouched and
    /// nothing is reloaded.
    pub async fn check(&self, conf: &Path, text: &str) -> Result<(), NginxError> {
        let conf = std::path::absolute(conf).map_err(|source| write_err(conf, source))?;
        self.validate(&conf, text).await
    }

    /// `nginx -t` on `text` as the candidate, in the context of nginx's main config.
    pub(super) async fn validate(&self, conf: &Path, text: &str) -> Result<(), NginxError> {
        let candidate = candidate_path(conf);
        write_file(&candidate, text.as_bytes()).await?;
        let test_main = sibling(conf, "test-main.conf");
        let (layout, main_text) = self.layout(conf).await?;
        let local_dir = conf.parent().map(Path::to_path_buf).unwrap_or_default();
        let nginx_dir = layout.live.parent().map(Path::to_path_buf);
        let listing = list(&local_dir).await;
        let list_dir = |d: &Path| {
            if Some(d) == nginx_dir.as_deref() {
                listing.clone()
            } else {
                Vec::new()
            }
        };
        let derived = testconf::derive(&main_text, &layout, list_dir);
        let Ok(test_text) = derived else {
            return self.validate_in_place(conf, text, derived.err()).await;
        };
        write_file(&test_main, test_text.as_bytes()).await?;
        let started = std::time::Instant::now();
        let verdict = match &self.target {
            Target::Local(argv) => {
                let path = test_main.display().to_string();
                run_local(&with_conf(argv, &path), &["-t", "-q"])
                    .await
                    .map(drop)
            }
            Target::Container(Some(docker), Some(id)) => {
                let path = nginx_dir
                    .unwrap_or_default()
                    .join(test_main.file_name().unwrap_or_default());
                nginxrun::exec_test(docker, id, &["-c", &path.to_string_lossy()]).await
            }
            Target::Container(..) => Err(NginxError::NoContainer),
        };
        tracing::debug!(
            action = "nginx_checked",
            ok = verdict.is_ok(),
            took_ms = started.elapsed().as_millis() as u64,
            "candidate validated by nginx -t"
        );
        verdict
    }

    /// The main config includes the live file only through another file: the old way (write
    /// the live file, `nginx -t`, put the old bytes back on rejection), with a warning once.
    async fn validate_in_place(
        &self,
        conf: &Path,
        text: &str,
        why: Option<testconf::DeriveError>,
    ) -> Result<(), NginxError> {
        if !std::mem::replace(&mut self.memo().warned_in_place, true) {
            let why = why.map(|e| e.to_string()).unwrap_or_default();
            tracing::warn!(action = "validate_in_place", error = %why, "cannot validate the candidate beside the live file; validating it in place");
        }
        let old = tokio::fs::read(conf).await.ok();
        write_file(conf, text.as_bytes()).await?;
        let verdict = self.test().await;
        if verdict.is_err() {
            match old {
                Some(bytes) => write_file(conf, &bytes).await?,
                None => tokio::fs::remove_file(conf)
                    .await
                    .map_err(|source| write_err(conf, source))?,
            }
        }
        verdict
    }
}
