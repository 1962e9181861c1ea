//! The apply step: skip unchanged text, skip `nginx -t` for a shape already validated, write
//! and promote the candidate, reload. Validation itself is in [`super::validate`].

use std::path::{Path, PathBuf};

use super::{Nginx, NginxError};
use crate::nginxfs::{blocking, list, promote, write_err, write_file};
use crate::nginxpaths::candidate_path;
use crate::shape::{self, Reference, Shape};

impl Nginx {
    /// Makes `text` the live config at `conf`: validate it as a candidate (or see that its
    /// shape was validated already), rename it onto the live path, reload. On rejection the live
    /// file is untouched. Returns false when the file already held `text` and `force_reload` is
    /// off (nothing to do).
    pub async fn apply(
        &self,
        conf: &Path,
        text: &str,
        force_reload: bool,
    ) -> Result<bool, NginxError> {
        let conf = std::path::absolute(conf).map_err(|source| write_err(conf, source))?;
        let old = blocking({
            let conf = conf.clone();
            move || Ok(std::fs::read(conf).ok())
        })
        .await?;
        let changed = old.as_deref() != Some(text.as_bytes());
        if !changed && !force_reload {
            return Ok(false);
        }
        if changed {
            let shape = shape_of(text).await;
            if self.known_shape(&shape).await {
                tracing::debug!(action = "check_skipped", conf = %conf.display(), "same shape as a validated config: nginx -t skipped");
                write_file(&candidate_path(&conf), text.as_bytes()).await?;
            } else {
                self.validate(&conf, text).await?;
                self.remember(shape, &conf).await;
            }
            promote(&conf).await?;
            tracing::debug!(action = "config_written", conf = %conf.display(), "validated candidate renamed onto the live path");
        } else {
            // Files the config names (certificates) changed: check them before the reload.
            self.memo().reference = None;
            self.validate(&conf, text).await?;
        }
        self.reload().await?;
        Ok(true)
    }

    /// Whether `shape` may skip `nginx -t` against the last validated config.
    async fn known_shape(&self, shape: &Shape) -> bool {
        let Some(r) = self.memo().reference.clone() else {
            return false;
        };
        let shape = shape.clone();
        tokio::task::spawn_blocking(move || r.allows(&shape, shape::stamp))
            .await
            .unwrap_or(false)
    }

    /// Remembers `shape` as validated, with the files nginx read besides it: its main config
    /// (local mode) and the other files of the conf directory.
    async fn remember(&self, shape: Shape, conf: &Path) {
        let main = self.memo().local.as_ref().map(|l| l.main.clone());
        let dir = conf.parent().map(Path::to_path_buf).unwrap_or_default();
        let live = conf
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let context: Vec<PathBuf> = list(&dir)
            .await
            .into_iter()
            .filter(|n| !n.starts_with('.') && *n != live)
            .map(|n| dir.join(n))
            .chain(main)
            .collect();
        let r = tokio::task::spawn_blocking(move || Reference::new(shape, &context, shape::stamp))
            .await
            .ok();
        self.memo().reference = r;
    }
}

/// The shape of `text`, on the blocking pool (it stats the absolute paths the text names);
/// an unusable shape, which is never allowed, if that task fails.
async fn shape_of(text: &str) -> Shape {
    let text = text.to_owned();
    tokio::task::spawn_blocking(move || Shape::of(&text))
        .await
        .unwrap_or_default()
}
