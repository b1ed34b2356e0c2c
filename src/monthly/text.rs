//! The report as the command's human text: counts first (Japanese labels vary in width).

use std::fmt::Write;

use super::Report;

fn minutes(m: Option<i64>) -> String {
    m.map_or_else(|| "—".into(), |m| format!("{m} min"))
}

/// The report as lines of text.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    // `write!` to a String cannot fail.
    let _ = write_text(&mut out, r);
    out
}

fn write_text(out: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(
        out,
        "monthly report {} ({} to {}, {})",
        r.month, r.first_day, r.last_day, r.timezone
    )?;
    writeln!(out, "\ntickets accepted: {}", r.tickets.total)?;
    writeln!(out, "  by category:")?;
    for c in &r.tickets.by_category {
        let rule = c.rule.unwrap_or("—");
        writeln!(out, "    {:>5}  {:<5} {}", c.count, rule, c.label)?;
    }
    writeln!(out, "  by contract:")?;
    if r.tickets.by_contract.is_empty() {
        writeln!(out, "    none")?;
    }
    for c in &r.tickets.by_contract {
        let name = match (&c.contract_id, &c.customer) {
            (Some(id), Some(customer)) => format!("{id} {customer}"),
            (Some(id), None) => id.clone(),
            (None, _) => "(no contract)".into(),
        };
        writeln!(out, "    {:>5}  {name}", c.count)?;
    }
    let f = &r.first_response;
    writeln!(
        out,
        "\nfirst response (business time): {} answered, {} not yet; median {}, p90 {}",
        f.answered,
        f.unanswered,
        minutes(f.median_minutes),
        minutes(f.p90_minutes)
    )?;
    for b in &f.distribution {
        writeln!(out, "    {:>5}  {}", b.count, b.label)?;
    }
    let k = &r.license_keys;
    let percent = k
        .on_time_percent
        .map_or_else(|| "nothing due".into(), |p| format!("{p:.1}%"));
    writeln!(
        out,
        "\nlicense keys (R8): {} of {} sent by the due date ({percent}); {} late, {} not sent; \
         {} refused",
        k.on_time, k.due, k.late, k.unsent, k.refused
    )?;
    writeln!(
        out,
        "\nautomatic replies withheld by the guard: {}",
        r.withheld.total
    )?;
    for w in &r.withheld.by_reason {
        writeln!(out, "    {:>5}  {:<24} {}", w.count, w.reason, w.label)?;
    }
    let m = &r.reminders;
    writeln!(out, "\nreminders queued (sent):")?;
    for k in &m.by_kind {
        writeln!(
            out,
            "    {:>5} ({})  {:<15} {}",
            k.queued, k.sent, k.kind, k.label
        )?;
    }
    writeln!(
        out,
        "renewals that followed: {} of {} contract(s) reminded",
        m.renewed, m.contracts_reminded
    )?;
    for c in &m.contracts {
        let renewed = c
            .renewed_on
            .map_or_else(|| "no order yet".into(), |d| format!("order received {d}"));
        writeln!(
            out,
            "    {} {}  reminded {} ({}): {renewed}",
            c.contract_id,
            c.customer.as_deref().unwrap_or(""),
            c.first_reminded,
            c.kinds.join(", ")
        )?;
    }
    Ok(())
}
