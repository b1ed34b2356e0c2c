//! `[metrics]`: an `IP:PORT` to serve Prometheus metrics and the health check on. Never a host
//! name (it could resolve to several addresses, or none) and never port 0 (a scraper needs to
//! know where to look).

use std::net::SocketAddr;

use super::super::model::{DEFAULT_METRICS_LISTEN, MetricsConfig};
use super::super::raw::RawMetrics;
use super::Problems;

/// `None` without the section (metrics are off) or after a reported problem.
pub(super) fn validate_metrics(
    raw: Option<&RawMetrics>,
    p: &mut Problems,
) -> Option<MetricsConfig> {
    let raw = raw?;
    let Some(text) = raw.listen.as_deref() else {
        return Some(MetricsConfig {
            listen: DEFAULT_METRICS_LISTEN,
        });
    };
    match text.trim().parse::<SocketAddr>() {
        Ok(listen) if listen.port() != 0 => Some(MetricsConfig { listen }),
        Ok(_) => {
            p.push(
                "metrics.listen",
                format!("{text:?}: port 0 is not a port Prometheus can scrape; name one"),
            );
            None
        }
        Err(_) => {
            p.push(
                "metrics.listen",
                format!(
                    "{text:?} is not an address to listen on; write IP:PORT, e.g. \
                     \"127.0.0.1:9464\" or \"[::1]:9464\" (\"0.0.0.0:9464\" for every interface)"
                ),
            );
            None
        }
    }
}
