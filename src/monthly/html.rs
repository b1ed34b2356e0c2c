//! The report as one self-contained HTML page (`report --html FILE`): inline CSS, SVG charts
//! drawn here, no scripts, no external fonts or images (a Content-Security-Policy of
//! `default-src 'none'` says so to the browser too). Every number a chart or a summary card
//! shows is also in its element's `data-value`, beside `data-chart` / `data-key`, so a test can
//! read the rendered page back and compare it with `--json`.
//!
//! Contract ids, customer names and reasons come from mail and CSV files: every such string is
//! escaped (`esc`), never trusted as markup.

use std::fmt::Write;

use super::{Report, reason_label};

/// Text as HTML text or a double-quoted attribute value; control characters (which HTML
/// forbids) become U+FFFD.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, with `…` when cut (chart labels; the full text is in `<title>`).
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// One bar or column: its stable key, its label, its number.
struct Bar {
    key: String,
    label: String,
    value: u64,
}

fn bar(key: impl Into<String>, label: impl Into<String>, value: u64) -> Bar {
    Bar {
        key: key.into(),
        label: label.into(),
        value,
    }
}

const STYLE: &str = r#"
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --bg: #f5f7fa; --card: #fff;
  --bar: #2f6fb0; --bar2: #d9822b; --bar3: #3f9142; --bar4: #b54747; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font-family: "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", "Hiragino Kaku Gothic ProN",
    "Yu Gothic", "Meiryo", sans-serif;
  font-size: 15px; line-height: 1.7; }
main { max-width: 1080px; margin: 0 auto; padding: 32px 24px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; color: var(--muted); }
h2 { font-size: 19px; margin: 0 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
.sub { color: var(--muted); margin: 0 0 24px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 20px 24px; margin: 0 0 20px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px;
  margin: 0 0 20px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
.card .k { color: var(--muted); font-size: 13px; }
.card .v { font-size: 26px; font-weight: 700; }
.card .u { font-size: 14px; font-weight: 400; color: var(--muted); margin-left: 2px; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font-family: inherit; font-size: 13px; fill: var(--ink); }
svg .value { font-weight: 700; }
svg .axis { stroke: var(--line); }
.c1 rect { fill: var(--bar); } .c2 rect { fill: var(--bar2); } .c3 rect { fill: var(--bar3); }
.c4 rect { fill: var(--bar4); }
.empty { color: var(--muted); }
.note { color: var(--muted); font-size: 13px; margin: 8px 0 0; }
table { border-collapse: collapse; width: 100%; margin-top: 12px; font-size: 14px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
@media print { body { background: #fff; } section, .card { break-inside: avoid; } }
"#;

const WIDTH: u32 = 760;
const LABEL_W: u32 = 300;
const ROW: u32 = 30;

/// A horizontal bar chart: one row per bar, label left, bar, number right.
fn bar_chart(out: &mut String, chart: &str, title: &str, color: u8, bars: &[Bar]) {
    if bars.is_empty() {
        let _ = writeln!(out, "<p class=\"empty\">該当なし</p>");
        return;
    }
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let area = WIDTH - LABEL_W - 70;
    let height = bars.len() as u32 * ROW + 10;
    let _ = writeln!(
        out,
        "<svg class=\"chart c{color}\" data-chart=\"{chart}\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{LABEL_W}\" y1=\"0\" x2=\"{LABEL_W}\" y2=\"{height}\"/>"
    );
    for (i, b) in bars.iter().enumerate() {
        let y = i as u32 * ROW + 5;
        let w = ((b.value as f64 / max as f64) * f64::from(area)).round() as u32;
        let w = if b.value > 0 { w.max(2) } else { 0 };
        let _ = writeln!(
            out,
            "<g class=\"bar\" data-key=\"{key}\" data-value=\"{v}\"><title>{label}: {v}</title>\
             <text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{short}</text>\
             <rect x=\"{LABEL_W}\" y=\"{ry}\" width=\"{w}\" height=\"20\" rx=\"3\"/>\
             <text class=\"value\" x=\"{vx}\" y=\"{ty}\">{v}</text></g>",
            key = esc(&b.key),
            v = b.value,
            label = esc(&b.label),
            short = esc(&cut(&b.label, 22)),
            lx = LABEL_W - 8,
            ty = y + 15,
            ry = y,
            vx = LABEL_W + w + 6,
        );
    }
    let _ = writeln!(out, "</svg>");
}

/// A column chart (the first-response distribution): columns left to right, number on top.
fn column_chart(out: &mut String, chart: &str, title: &str, color: u8, bars: &[Bar]) {
    let height = 240u32;
    let base = height - 40;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let slot = WIDTH / bars.len().max(1) as u32;
    let _ = writeln!(
        out,
        "<svg class=\"chart c{color}\" data-chart=\"{chart}\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"0\" y1=\"{base}\" x2=\"{WIDTH}\" y2=\"{base}\"/>"
    );
    for (i, b) in bars.iter().enumerate() {
        let h = ((b.value as f64 / max as f64) * f64::from(base - 30)).round() as u32;
        let h = if b.value > 0 { h.max(2) } else { 0 };
        let x = i as u32 * slot + slot / 6;
        let w = slot * 2 / 3;
        let mid = x + w / 2;
        let _ = writeln!(
            out,
            "<g class=\"bar\" data-key=\"{key}\" data-value=\"{v}\"><title>{label}: {v}</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"3\"/>\
             <text class=\"value\" x=\"{mid}\" y=\"{vy}\" text-anchor=\"middle\">{v}</text>\
             <text x=\"{mid}\" y=\"{ly}\" text-anchor=\"middle\">{label}</text></g>",
            key = esc(&b.key),
            v = b.value,
            label = esc(&b.label),
            y = base - h,
            vy = base - h - 6,
            ly = base + 22,
        );
    }
    let _ = writeln!(out, "</svg>");
}

/// A summary card; `value` None shows a dash and an empty `data-value`.
fn card(out: &mut String, key: &str, label: &str, value: Option<String>, unit: &str) {
    let (data, shown) = match value {
        Some(v) => (v.clone(), format!("{v}<span class=\"u\">{unit}</span>")),
        None => (String::new(), "—".into()),
    };
    let _ = writeln!(
        out,
        "<div class=\"card\" data-key=\"{key}\" data-value=\"{data}\">\
         <div class=\"k\">{label}</div><div class=\"v\">{shown}</div></div>"
    );
}

fn minutes_text(m: Option<i64>) -> String {
    match m {
        None => "—".into(),
        Some(m) if m < 60 => format!("{m}分"),
        Some(m) => format!("{m}分（{}時間{}分）", m / 60, m % 60),
    }
}

/// The report as one HTML document.
pub fn render_html(r: &Report) -> String {
    let mut out = String::new();
    let title = format!("月次レポート {}", r.month);
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>",
        esc(&title)
    );
    let month_ja = super::Month::parse(&r.month)
        .map(|m| m.label_ja())
        .unwrap_or_else(|_| r.month.clone());
    let _ = writeln!(
        out,
        "<h1>サポート窓口 月次レポート {}</h1>\n<p class=\"sub\">desknet's NEO 分散サーバー\
         \u{3000}対象期間 {} 〜 {}（{}）</p>",
        esc(&month_ja),
        r.first_day,
        r.last_day,
        esc(&r.timezone)
    );

    let _ = writeln!(out, "<div class=\"cards\" data-chart=\"summary\">");
    let f = &r.first_response;
    let k = &r.license_keys;
    card(
        &mut out,
        "tickets",
        "受付件数",
        Some(r.tickets.total.to_string()),
        "件",
    );
    card(
        &mut out,
        "median_minutes",
        "初回応答 中央値",
        f.median_minutes.map(|m| m.to_string()),
        "分",
    );
    card(
        &mut out,
        "p90_minutes",
        "初回応答 90パーセンタイル",
        f.p90_minutes.map(|m| m.to_string()),
        "分",
    );
    card(
        &mut out,
        "on_time_percent",
        "ライセンスキー期日内送付率",
        k.on_time_percent.map(|p| format!("{p:.1}")),
        "%",
    );
    card(
        &mut out,
        "withheld",
        "自動返信を控えたメール",
        Some(r.withheld.total.to_string()),
        "通",
    );
    card(
        &mut out,
        "renewed",
        "リマインダー後の更新",
        Some(r.reminders.renewed.to_string()),
        &format!("/ {} 契約", r.reminders.contracts_reminded),
    );
    let _ = writeln!(out, "</div>");

    // Tickets by category and by contract.
    let _ = writeln!(
        out,
        "<section id=\"categories\">\n<h2>種別ごとの受付件数</h2>"
    );
    let bars: Vec<Bar> = r
        .tickets
        .by_category
        .iter()
        .map(|c| {
            let label = match c.rule {
                Some(rule) => format!("{rule} {}", c.label),
                None => c.label.to_string(),
            };
            bar(c.category, label, c.count)
        })
        .collect();
    bar_chart(&mut out, "categories", "種別ごとの受付件数", 1, &bars);
    let _ = writeln!(
        out,
        "<p class=\"note\">R1: 技術サポート（操作・不具合・パッチ・データ移行）、R2: \
         ライセンスキー再発行、R3: desknet's NEO 本体。受付日時（R5）が当月のもの。</p>\n</section>"
    );

    let _ = writeln!(
        out,
        "<section id=\"contracts\">\n<h2>契約ごとの受付件数</h2>"
    );
    contracts_section(&mut out, r);

    // First response.
    let _ = writeln!(
        out,
        "<section id=\"first-response\">\n<h2>初回応答までの時間（営業時間）</h2>\n\
         <p>中央値 <strong>{}</strong>、90パーセンタイル <strong>{}</strong>。\
         応答済み {} 件、未応答 {} 件。</p>",
        minutes_text(f.median_minutes),
        minutes_text(f.p90_minutes),
        f.answered,
        f.unanswered
    );
    let bars: Vec<Bar> = f
        .distribution
        .iter()
        .map(|b| bar(b.bucket.clone(), b.label.clone(), b.count))
        .collect();
    column_chart(&mut out, "first_response", "初回応答時間の分布", 3, &bars);
    let _ = writeln!(
        out,
        "<p class=\"note\">受付時間（平日 9:00〜12:00、13:00〜17:30、休業日を除く）で数えた\
         時間。</p>\n</section>"
    );

    // R8.
    let _ = writeln!(
        out,
        "<section id=\"license-keys\">\n<h2>ライセンスキーの期日内送付（R8）</h2>\n\
         <p>当月が期日の申請 {} 件のうち、期日までに送付 <strong>{}</strong> 件{}。</p>",
        k.due,
        k.on_time,
        k.on_time_percent
            .map(|p| format!("（{p:.1}%）"))
            .unwrap_or_default()
    );
    let bars = [
        bar("on_time", "期日内に送付", k.on_time),
        bar("late", "期日後に送付", k.late),
        bar("unsent", "未送付", k.unsent),
        bar("refused", "発行不可（対象外）", k.refused),
    ];
    bar_chart(&mut out, "license_keys", "ライセンスキーの送付", 2, &bars);
    let _ = writeln!(out, "</section>");

    // Withheld automatic replies.
    let _ = writeln!(
        out,
        "<section id=\"withheld\">\n<h2>自動返信を控えたメール（理由別）</h2>\n\
         <p>自動送信・配信エラー・メーリングリストなど、返信するとループや迷惑になるメール: \
         {} 通。</p>",
        r.withheld.total
    );
    let bars: Vec<Bar> = r
        .withheld
        .by_reason
        .iter()
        .map(|w| bar(w.reason.clone(), reason_label(&w.reason), w.count))
        .collect();
    bar_chart(&mut out, "withheld", "自動返信を控えた理由", 4, &bars);
    let _ = writeln!(out, "</section>");

    reminders_section(&mut out, r);
    let _ = writeln!(out, "</main>\n</body>\n</html>");
    out
}

/// Contracts past this many share one bar ("ほか N 契約", key `_others`); all of them are
/// listed in a table below the chart then.
pub const TOP_CONTRACTS: usize = 15;

fn contract_label(c: &super::ContractCount) -> String {
    match (&c.contract_id, &c.customer) {
        (Some(id), Some(name)) => format!("{id} {name}"),
        (Some(id), None) => id.clone(),
        (None, _) => "契約なし".into(),
    }
}

fn contracts_section(out: &mut String, r: &Report) {
    let all = &r.tickets.by_contract;
    let mut bars: Vec<Bar> = all
        .iter()
        .take(TOP_CONTRACTS)
        .map(|c| {
            bar(
                c.contract_id.clone().unwrap_or_default(),
                contract_label(c),
                c.count,
            )
        })
        .collect();
    if all.len() > TOP_CONTRACTS {
        let rest = &all[TOP_CONTRACTS..];
        bars.push(bar(
            "_others",
            format!("ほか {} 契約", rest.len()),
            rest.iter().map(|c| c.count).sum(),
        ));
    }
    bar_chart(out, "contracts", "契約ごとの受付件数", 1, &bars);
    if all.len() > TOP_CONTRACTS {
        let _ = writeln!(
            out,
            "<table>\n<thead><tr><th>お客様番号・お客様</th><th class=\"n\">件数</th></tr>\
             </thead>\n<tbody>"
        );
        for c in all {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(&contract_label(c)),
                c.count
            );
        }
        let _ = writeln!(out, "</tbody>\n</table>");
    }
    let _ = writeln!(out, "</section>");
}

fn reminders_section(out: &mut String, r: &Report) {
    let m = &r.reminders;
    let _ = writeln!(
        out,
        "<section id=\"reminders\">\n<h2>リマインダーとその後の更新</h2>"
    );
    let bars: Vec<Bar> = m
        .by_kind
        .iter()
        .map(|k| bar(k.kind, k.label, k.queued))
        .collect();
    let _ = writeln!(out, "<h3>当月に送ったリマインダー（種類別・予定）</h3>");
    bar_chart(out, "reminders", "当月のリマインダー", 1, &bars);
    let _ = writeln!(out, "<h3>うち送信済み</h3>");
    let bars: Vec<Bar> = m
        .by_kind
        .iter()
        .map(|k| bar(k.kind, k.label, k.sent))
        .collect();
    bar_chart(out, "reminders_sent", "送信済みのリマインダー", 1, &bars);
    let _ = writeln!(out, "<h3>リマインダー後の更新</h3>");
    let bars = [
        bar("contracts_reminded", "案内した契約", m.contracts_reminded),
        bar("renewed", "その後に更新・再継続の注文", m.renewed),
    ];
    bar_chart(out, "renewals", "リマインダー後の更新", 3, &bars);
    if !m.contracts.is_empty() {
        let _ = writeln!(
            out,
            "<table>\n<thead><tr><th>お客様番号</th><th>お客様</th><th>案内</th>\
             <th>最初の案内日</th><th>更新の注文受付日</th></tr></thead>\n<tbody>"
        );
        for c in &m.contracts {
            let kinds: Vec<String> = c
                .kinds
                .iter()
                .map(|k| {
                    super::REMINDER_KINDS
                        .iter()
                        .find(|(code, _)| code == k)
                        .map_or_else(|| k.clone(), |(_, label)| (*label).to_string())
                })
                .collect();
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.contract_id),
                esc(c.customer.as_deref().unwrap_or("")),
                esc(&kinds.join("、")),
                c.first_reminded,
                c.renewed_on.map_or_else(|| "—".into(), |d| d.to_string())
            );
        }
        let _ = writeln!(out, "</tbody>\n</table>");
    }
    let _ = writeln!(
        out,
        "<p class=\"note\">更新のご案内（期間終了の60・30・7日前）、サポート終了のお知らせ、\
         再継続のご案内を当月に送った契約のうち、その日以降に更新または再継続年間サポートの\
         ご注文を受け付けた契約の数。</p>\n</section>"
    );
}
