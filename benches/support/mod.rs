//! What the server benchmarks share: the test harnesses (a private Dovecot, the aiosmtpd sink)
//! included by path, and a desk config for them.

#![allow(dead_code)]

#[path = "../../tests/integration/dovecot.rs"]
pub mod dovecot;
#[path = "../../tests/integration/smtp_sink.rs"]
pub mod smtp_sink;
#[path = "../../tests/integration/wait.rs"]
pub mod wait;

/// The one helper the harnesses take from the tests' util module.
pub mod util {
    use std::path::{Path, PathBuf};

    pub fn repo_path(relative: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
    }
}

/// A customer's question from a distinct sender (so no per-sender limit applies), ~1.5 KB.
pub fn customer_mail(i: usize) -> Vec<u8> {
    let body = "分散サーバーの同期設定について質問です。拠点サーバーとの同期間隔を変更したいのですが、\r\n\
                管理画面のどこから設定すればよいでしょうか。現在の設定は60分です。\r\n"
        .repeat(6);
    format!(
        "From: Customer {i} <customer{i}@example.jp>\r\nTo: support@example.co.jp\r\n\
         Subject: question {i}\r\nMessage-ID: <bench{i}@example.jp>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0900\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
    )
    .into_bytes()
}

/// Peak resident memory (KiB) and wall time of a child command, measured by Python's
/// `getrusage(RUSAGE_CHILDREN)` around it.
pub fn run_measured(args: &[&str]) -> (u64, f64, String) {
    let script = "import resource,subprocess,sys,time\n\
                  t=time.perf_counter()\n\
                  r=subprocess.run(sys.argv[1:],capture_output=True,text=True)\n\
                  d=time.perf_counter()-t\n\
                  u=resource.getrusage(resource.RUSAGE_CHILDREN)\n\
                  print(u.ru_maxrss, d, r.returncode, u.ru_utime, u.ru_stime)\n\
                  sys.stderr.write(r.stdout+r.stderr)\n";
    let out = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut fields = stdout.split_whitespace();
    let rss: u64 = fields.next().and_then(|f| f.parse().ok()).expect("maxrss");
    let secs: f64 = fields.next().and_then(|f| f.parse().ok()).expect("seconds");
    let code = fields.next().unwrap_or("?").to_string();
    let cpu: Vec<&str> = fields.collect();
    println!(
        "  (measured child: {secs:.2} s wall, {} s user, {} s system)",
        cpu.first().unwrap_or(&"?"),
        cpu.get(1).unwrap_or(&"?")
    );
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(code, "0", "command failed: {log}");
    (rss, secs, log)
}
