//! `[metrics]`: off by default, an IP:PORT to listen on, every problem named.

use std::net::SocketAddr;

use super::*;

fn listen(section: &str) -> Result<Option<SocketAddr>, Diagnostics> {
    parse(&format!("{MINIMAL}{section}")).map(|c| c.metrics.map(|m| m.listen))
}

#[test]
fn metrics_are_off_without_the_section_and_on_loopback_9464_with_it() {
    assert_eq!(listen(""), Ok(None));
    assert_eq!(
        listen("[metrics]\n"),
        Ok(Some("127.0.0.1:9464".parse().unwrap()))
    );
    assert_eq!(
        listen("[metrics]\nlisten = \"[::1]:9100\"\n"),
        Ok(Some("[::1]:9100".parse().unwrap()))
    );
    let c = parse(&format!("{MINIMAL}[metrics]\nlisten = \"0.0.0.0:9464\"\n")).unwrap();
    assert!(
        c.summary()
            .contains("metrics: http://0.0.0.0:9464/metrics and /healthz"),
        "{}",
        c.summary()
    );
    // The example documents the section commented out: metrics stay off.
    assert_eq!(parse(EXAMPLE_TOML).unwrap().metrics, None);
}

#[test]
fn the_example_section_validates_when_uncommented() {
    let text = EXAMPLE_TOML
        .replace("#[metrics]", "[metrics]")
        .replace("#listen = ", "listen = ");
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.metrics.map(|m| m.listen),
        Some("127.0.0.1:9464".parse().unwrap())
    );
}

#[test]
fn a_listen_address_is_an_ip_and_a_port_other_than_0() {
    for (bad, why) in [
        (
            "localhost:9464",
            "is not an address to listen on; write IP:PORT",
        ),
        ("127.0.0.1", "is not an address to listen on; write IP:PORT"),
        ("", "is not an address to listen on; write IP:PORT"),
        ("127.0.0.1:0", "port 0 is not a port Prometheus can scrape"),
        ("127.0.0.1:99999", "is not an address to listen on"),
    ] {
        let e = listen(&format!("[metrics]\nlisten = \"{bad}\"\n")).expect_err(bad);
        assert_eq!(e.problems.len(), 1, "{e}");
        let text = e.problems[0].to_string();
        assert!(text.starts_with("metrics.listen: "), "{text}");
        assert!(text.contains(why), "{bad}: {text}");
    }
}

#[test]
fn unknown_keys_and_wrong_types_are_reported_with_the_rest() {
    let e = listen("[metrics]\nlisten = 9464\nport = 9464\n[hours]\nlicense_cutoff = \"25:00\"\n")
        .expect_err("problems");
    let text = e.to_string();
    for key in ["metrics.listen", "metrics.port", "hours.license_cutoff"] {
        assert!(text.contains(key), "{key} missing in {text}");
    }
}
