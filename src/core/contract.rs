//! Support periods (support terms §3, rules R9–R12). Pure: every date is a parameter.
//!
//! Periods are inclusive on both ends. A year is counted as the Japanese Civil Code counts it
//! (art. 143): a year starting on day D ends on the day before D's anniversary; when the
//! anniversary does not exist (a start on 29 February), it ends on the last day of February.
//! For periods starting on the 1st of a month this is simply `start + 1 year − 1 day`.
//!
//! Arithmetic saturates at `NaiveDate::MAX` instead of panicking: dates that far out (year
//! 262143) are never real input, and the CSV layer only admits four-digit years.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// An inclusive support period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SupportPeriod {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl SupportPeriod {
    /// The one-year period starting on `start` (Civil Code art. 143 counting, see module doc).
    pub fn one_year_from(start: NaiveDate) -> Self {
        SupportPeriod {
            start,
            end: year_end(start),
        }
    }

    /// Whether `date` lies in the period (both ends inclusive).
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end
    }
}

impl std::fmt::Display for SupportPeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} to {}", self.start, self.end)
    }
}

/// R9: the first year of a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FirstYear {
    /// The base period. Serialised flat, so JSON reads `{start, end, covered_from}`.
    #[serde(flatten)]
    pub period: SupportPeriod,
    /// Support is given from this day on, even before `period.start`.
    pub covered_from: NaiveDate,
}

/// R9: the base period starts on the 1st of the month after `received` (or on `received` when
/// that is a 1st) and lasts one year. Support is given from the first license purchase date
/// (the received date when unknown). A purchase date after the period start does not delay
/// support inside the paid-for base period, so `covered_from = min(purchased, start)`.
pub fn first_year(received: NaiveDate, purchased: Option<NaiveDate>) -> FirstYear {
    let period = SupportPeriod::one_year_from(first_of_month_from(received));
    FirstYear {
        period,
        covered_from: purchased.unwrap_or(received).min(period.start),
    }
}

/// Which product an order after a period has ended must be (R11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenewalKind {
    /// A plain renewal (年間サポート) is enough.
    Renewal,
    /// A year or more has passed since the last period ended: 再継続年間サポート is required.
    RecontinuationRequired,
}

/// R10/R11: what an order received on a given day buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Renewal {
    pub kind: RenewalKind,
    /// Serialised flat, so JSON reads `{kind, start, end}`.
    #[serde(flatten)]
    pub period: SupportPeriod,
}

/// The last day on which a plain renewal may be received after a period ending on `last_end`
/// (R11): the end of the year that starts the day after `last_end`.
/// Example: `last_end` 2025-03-31 → 2026-03-31; from 2026-04-01 on, re-continuation.
pub fn renewal_deadline(last_end: NaiveDate) -> NaiveDate {
    year_end(next_day(last_end))
}

/// R10/R11: the period bought by an order received on `received` when the last period ended on
/// `last_end`. Inside the period the next one follows seamlessly; after it, the new period starts
/// on the 1st-of-month rule of R9, and from `renewal_deadline(last_end) + 1 day` on the order
/// must be a re-continuation (its period follows the same 1st-of-month rule).
pub fn renewal(last_end: NaiveDate, received: NaiveDate) -> Renewal {
    if received <= last_end {
        return Renewal {
            kind: RenewalKind::Renewal,
            period: SupportPeriod::one_year_from(next_day(last_end)),
        };
    }
    let kind = if received <= renewal_deadline(last_end) {
        RenewalKind::Renewal
    } else {
        RenewalKind::RecontinuationRequired
    };
    Renewal {
        kind,
        period: SupportPeriod::one_year_from(first_of_month_from(received)),
    }
}

/// The kind of an order as recorded (orders.csv `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    Initial,
    Renewal,
    Recontinuation,
}

impl OrderKind {
    /// The spelling used in orders.csv and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Initial => "initial",
            OrderKind::Renewal => "renewal",
            OrderKind::Recontinuation => "recontinuation",
        }
    }
}

impl std::fmt::Display for OrderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not one of [`OrderKind::as_str`]'s spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an order kind (initial, renewal or recontinuation)")]
pub struct UnknownOrderKind(pub String);

/// The inverse of [`OrderKind::as_str`] (exact spelling; callers lowercase what people type).
impl std::str::FromStr for OrderKind {
    type Err = UnknownOrderKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            OrderKind::Initial,
            OrderKind::Renewal,
            OrderKind::Recontinuation,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| UnknownOrderKind(s.to_string()))
    }
}

/// One support order of a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Order {
    pub kind: OrderKind,
    /// ご注文受付日.
    pub received: NaiveDate,
    /// 初回ライセンス購入日; only meaningful (and only allowed) on the initial order.
    pub purchased: Option<NaiveDate>,
    /// The period printed on the 年間サポート証書; when present it replaces the computed one (R12).
    pub certificate: Option<SupportPeriod>,
}

/// A contract as registered (contracts.csv): who the customer is, who may see its details, and
/// what routes mail to it. Its support periods are not here: they follow from its orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    pub contract_id: String,
    pub customer: String,
    pub license_serial: String,
    /// Registered contacts: lowercased addresses, at least one, no duplicates.
    pub contacts: Vec<String>,
    /// Lowercased domains without `@`, possibly none, no duplicates.
    pub domains: Vec<String>,
    pub customized: bool,
    /// Whether the customer also holds desknet's NEO annual support (R3).
    pub neo_support: bool,
    /// May be empty (not known yet).
    pub server_id: String,
    /// Whether its contacts get renewal reminders (contracts.csv `reminders`, default yes).
    pub reminders: bool,
}

/// One order of a contract, as recorded (orders.csv).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub contract_id: String,
    pub order: Order,
}

/// A period bought by one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OrderPeriod {
    #[serde(flatten)]
    pub period: SupportPeriod,
    pub kind: OrderKind,
    pub received: NaiveDate,
    /// The period was taken from the certificate rather than computed (R12).
    pub from_certificate: bool,
}

impl std::fmt::Display for OrderPeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, received {}",
            self.period, self.kind, self.received
        )?;
        if self.from_certificate {
            f.write_str(", from the certificate")?;
        }
        f.write_str(")")
    }
}

/// The periods of one contract, in the order the orders were received.
/// Invariants when built by [`periods_from_orders`]: `periods` is non-empty, the first is the
/// initial order's, and every period ends after the previous one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContractPeriods {
    /// The first day support is given (R9: the first purchase date, at the latest the first
    /// period's start).
    pub covered_from: NaiveDate,
    pub periods: Vec<OrderPeriod>,
}

/// Why an order of a contract was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("a contract needs at least one order (its initial order)")]
    NoOrders,
    /// `index` is the position in the slice given to [`periods_from_orders`].
    #[error("order {}: {problem}", .index + 1)]
    Rejected { index: usize, problem: OrderProblem },
}

impl OrderError {
    /// The index (into the slice given to [`periods_from_orders`]) of the offending order.
    pub fn index(&self) -> Option<usize> {
        match self {
            OrderError::NoOrders => None,
            OrderError::Rejected { index, .. } => Some(*index),
        }
    }
}

/// What is wrong with one order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderProblem {
    #[error(
        "the first order of a contract (by received date) must be an initial order, not {kind}"
    )]
    FirstNotInitial { kind: OrderKind },
    #[error(
        "only the first order of a contract may be an initial order (this contract started with \
         the order received on {first_received}); use renewal or recontinuation"
    )]
    InitialNotFirst { first_received: NaiveDate },
    #[error(
        "renewal received on {received} is a year or more after the support period ended on \
         {last_end} (a plain renewal had to be received by {deadline}); a re-continuation \
         (再継続年間サポート) order is required (R11)"
    )]
    RecontinuationRequired {
        received: NaiveDate,
        last_end: NaiveDate,
        deadline: NaiveDate,
    },
    #[error(
        "recontinuation received on {received}, but the support period ending on {last_end} can \
         still be renewed plainly until {deadline}; a renewal order applies (R10/R11)"
    )]
    RenewalApplies {
        received: NaiveDate,
        last_end: NaiveDate,
        deadline: NaiveDate,
    },
    #[error("a purchase date belongs on the initial order only, not on a {kind} order")]
    PurchasedNotInitial { kind: OrderKind },
    #[error("certificate period starts on {start}, after its end {end}")]
    CertificateReversed { start: NaiveDate, end: NaiveDate },
    #[error(
        "certificate period ends on {end}, not after the previous period's end {last_end}; \
         periods must move forward"
    )]
    CertificateNotForward { end: NaiveDate, last_end: NaiveDate },
}

/// R9–R12 over ONE contract's orders. Orders are taken by received date (stable for equal
/// dates). The first must be `Initial` and no other may be; each later order is checked
/// against R11 (`renewal(latest end, received)`) and chains from the latest period, so orders
/// received inside the current period prepay consecutive years. A certificate period replaces
/// the computed one as-is and later orders chain from it; it must end after the previous period
/// (otherwise chaining would go backwards). The R11 kind check applies to certificate orders
/// too: the certificate governs the period, not which product had to be bought.
pub fn periods_from_orders(orders: &[Order]) -> Result<ContractPeriods, OrderError> {
    let mut by_received: Vec<usize> = (0..orders.len()).collect();
    by_received.sort_by_key(|&i| orders[i].received);
    let Some((&first_index, rest)) = by_received.split_first() else {
        return Err(OrderError::NoOrders);
    };
    let reject = |index: usize, problem: OrderProblem| OrderError::Rejected { index, problem };

    let first = &orders[first_index];
    if first.kind != OrderKind::Initial {
        return Err(reject(
            first_index,
            OrderProblem::FirstNotInitial { kind: first.kind },
        ));
    }
    let period = match first.certificate {
        Some(cert) => checked_certificate(cert).map_err(|p| reject(first_index, p))?,
        None => first_year(first.received, first.purchased).period,
    };
    let covered_from = first.purchased.unwrap_or(first.received).min(period.start);
    let mut periods = vec![OrderPeriod {
        period,
        kind: OrderKind::Initial,
        received: first.received,
        from_certificate: first.certificate.is_some(),
    }];

    for &index in rest {
        let order = &orders[index];
        let last_end = period_end_of_last(&periods);
        if order.kind == OrderKind::Initial {
            return Err(reject(
                index,
                OrderProblem::InitialNotFirst {
                    first_received: first.received,
                },
            ));
        }
        if order.purchased.is_some() {
            return Err(reject(
                index,
                OrderProblem::PurchasedNotInitial { kind: order.kind },
            ));
        }
        let computed = renewal(last_end, order.received);
        let deadline = renewal_deadline(last_end);
        match (order.kind, computed.kind) {
            (OrderKind::Renewal, RenewalKind::RecontinuationRequired) => {
                return Err(reject(
                    index,
                    OrderProblem::RecontinuationRequired {
                        received: order.received,
                        last_end,
                        deadline,
                    },
                ));
            }
            (OrderKind::Recontinuation, RenewalKind::Renewal) => {
                return Err(reject(
                    index,
                    OrderProblem::RenewalApplies {
                        received: order.received,
                        last_end,
                        deadline,
                    },
                ));
            }
            _ => {}
        }
        let period = match order.certificate {
            Some(cert) => {
                let cert = checked_certificate(cert).map_err(|p| reject(index, p))?;
                if cert.end <= last_end {
                    return Err(reject(
                        index,
                        OrderProblem::CertificateNotForward {
                            end: cert.end,
                            last_end,
                        },
                    ));
                }
                cert
            }
            None => computed.period,
        };
        periods.push(OrderPeriod {
            period,
            kind: order.kind,
            received: order.received,
            from_certificate: order.certificate.is_some(),
        });
    }
    Ok(ContractPeriods {
        covered_from,
        periods,
    })
}

/// Coverage of a contract on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CoverageStatus {
    /// Before the first day of support.
    NotYetCovered { starts: NaiveDate },
    /// Covered. Between `covered_from` and the first period's start, `period` is the first
    /// period (the purchase date brings support forward, R9).
    Covered { period: SupportPeriod },
    /// Between two periods: a period ended and an already ordered one has not started
    /// (an R10 renewal received after the end starts on the next 1st).
    Lapsed {
        last_end: NaiveDate,
        resumes: NaiveDate,
    },
    /// After the last period; `next` says what an order received on that day would have to be.
    Expired {
        last_end: NaiveDate,
        next: RenewalKind,
    },
    /// `periods` was empty (cannot happen for values built by [`periods_from_orders`]).
    NoPeriods,
}

impl std::fmt::Display for CoverageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoverageStatus::NotYetCovered { starts } => {
                write!(f, "not yet covered (support starts {starts})")
            }
            CoverageStatus::Covered { period } => write!(f, "covered ({period})"),
            CoverageStatus::Lapsed { last_end, resumes } => write!(
                f,
                "not covered: the period ended {last_end}; the next one starts {resumes}"
            ),
            CoverageStatus::Expired {
                last_end,
                next: RenewalKind::Renewal,
            } => write!(f, "expired {last_end}; a renewal order is needed"),
            CoverageStatus::Expired {
                last_end,
                next: RenewalKind::RecontinuationRequired,
            } => write!(
                f,
                "expired {last_end}; a re-continuation (再継続年間サポート) is required"
            ),
            CoverageStatus::NoPeriods => f.write_str("no support periods"),
        }
    }
}

/// The coverage of `periods` on `date`.
pub fn status_on(periods: &ContractPeriods, date: NaiveDate) -> CoverageStatus {
    let Some(first) = periods.periods.first() else {
        return CoverageStatus::NoPeriods;
    };
    // Latest order first: with overlapping certificate periods the newest one governs.
    if let Some(p) = periods
        .periods
        .iter()
        .rev()
        .find(|p| p.period.contains(date))
    {
        return CoverageStatus::Covered { period: p.period };
    }
    if periods.covered_from <= date && date <= first.period.end {
        return CoverageStatus::Covered {
            period: first.period,
        };
    }
    if date < periods.covered_from {
        return CoverageStatus::NotYetCovered {
            starts: periods.covered_from,
        };
    }
    // Here `date` is after the first period's end, so some period ended before it.
    let last_end = periods
        .periods
        .iter()
        .map(|p| p.period.end)
        .filter(|&end| end < date)
        .max()
        .unwrap_or(first.period.end);
    let resumes = periods
        .periods
        .iter()
        .map(|p| p.period.start)
        .filter(|&start| start > date)
        .min();
    match resumes {
        Some(resumes) => CoverageStatus::Lapsed { last_end, resumes },
        None => CoverageStatus::Expired {
            last_end,
            next: renewal(last_end, date).kind,
        },
    }
}

fn checked_certificate(cert: SupportPeriod) -> Result<SupportPeriod, OrderProblem> {
    if cert.start > cert.end {
        return Err(OrderProblem::CertificateReversed {
            start: cert.start,
            end: cert.end,
        });
    }
    Ok(cert)
}

fn period_end_of_last(periods: &[OrderPeriod]) -> NaiveDate {
    // Ends only move forward (see periods_from_orders), so the last is the latest.
    periods.last().map_or(NaiveDate::MIN, |p| p.period.end)
}

fn next_day(date: NaiveDate) -> NaiveDate {
    date.succ_opt().unwrap_or(NaiveDate::MAX)
}

/// `date` itself when it is a 1st, otherwise the 1st of the following month (R9, R10).
fn first_of_month_from(date: NaiveDate) -> NaiveDate {
    if date.day() == 1 {
        return date;
    }
    let (year, month) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(NaiveDate::MAX)
}

/// Last day of the year starting on `start` (Civil Code art. 143).
fn year_end(start: NaiveDate) -> NaiveDate {
    match start.with_year(start.year() + 1) {
        Some(anniversary) => anniversary.pred_opt().unwrap_or(start),
        // No 29 February next year: the year ends on the last day of that February.
        None if start.month() == 2 && start.day() == 29 => {
            NaiveDate::from_ymd_opt(start.year() + 1, 2, 28).unwrap_or(NaiveDate::MAX)
        }
        None => NaiveDate::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    fn p(start: &str, end: &str) -> SupportPeriod {
        SupportPeriod {
            start: d(start),
            end: d(end),
        }
    }

    fn order(kind: OrderKind, received: &str) -> Order {
        Order {
            kind,
            received: d(received),
            purchased: None,
            certificate: None,
        }
    }

    fn with_cert(mut o: Order, start: &str, end: &str) -> Order {
        o.certificate = Some(p(start, end));
        o
    }

    fn ranges(c: &ContractPeriods) -> Vec<SupportPeriod> {
        c.periods.iter().map(|p| p.period).collect()
    }

    fn rejected(orders: &[Order]) -> (usize, OrderProblem) {
        match periods_from_orders(orders) {
            Err(OrderError::Rejected { index, problem }) => (index, problem),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    use OrderKind::{Initial, Recontinuation, Renewal as Ren};

    // --- R9 ---

    #[test]
    fn r9_example_received_mid_month() {
        let fy = first_year(d("2026-03-15"), None);
        assert_eq!(fy.period, p("2026-04-01", "2027-03-31"));
        assert_eq!(fy.covered_from, d("2026-03-15"));
    }

    #[test]
    fn r9_example_received_on_the_first() {
        let fy = first_year(d("2026-04-01"), None);
        assert_eq!(fy.period, p("2026-04-01", "2027-03-31"));
        assert_eq!(fy.covered_from, d("2026-04-01"));
    }

    #[test]
    fn r9_covered_from_purchase_date() {
        let fy = first_year(d("2026-03-15"), Some(d("2026-02-20")));
        assert_eq!(fy.period, p("2026-04-01", "2027-03-31"));
        assert_eq!(fy.covered_from, d("2026-02-20"));
    }

    #[test]
    fn r9_purchase_after_start_is_capped_at_start() {
        let fy = first_year(d("2026-03-15"), Some(d("2026-05-10")));
        assert_eq!(fy.covered_from, d("2026-04-01"));
    }

    #[test]
    fn r9_month_end_and_leap_year_edges() {
        assert_eq!(
            first_year(d("2027-12-31"), None).period,
            p("2028-01-01", "2028-12-31")
        );
        assert_eq!(
            first_year(d("2028-02-29"), None).period,
            p("2028-03-01", "2029-02-28")
        );
        assert_eq!(
            first_year(d("2027-01-31"), None).period,
            p("2027-02-01", "2028-01-31")
        );
        // Period spanning 29 February 2028 still ends the day before the 1st.
        assert_eq!(
            first_year(d("2027-02-15"), None).period,
            p("2027-03-01", "2028-02-29")
        );
        assert_eq!(
            first_year(d("2028-02-01"), None).period,
            p("2028-02-01", "2029-01-31")
        );
    }

    #[test]
    fn one_year_from_29_february_ends_28_february() {
        assert_eq!(
            SupportPeriod::one_year_from(d("2028-02-29")),
            p("2028-02-29", "2029-02-28")
        );
        assert_eq!(
            SupportPeriod::one_year_from(d("2027-03-01")),
            p("2027-03-01", "2028-02-29")
        );
        assert_eq!(
            SupportPeriod::one_year_from(d("2026-06-15")),
            p("2026-06-15", "2027-06-14")
        );
    }

    #[test]
    fn contains_is_inclusive() {
        let period = p("2026-04-01", "2027-03-31");
        assert!(!period.contains(d("2026-03-31")));
        assert!(period.contains(d("2026-04-01")));
        assert!(period.contains(d("2027-03-31")));
        assert!(!period.contains(d("2027-04-01")));
    }

    // --- R10 / R11 ---

    #[test]
    fn r11_example_last_day_for_plain_renewal() {
        let r = renewal(d("2025-03-31"), d("2026-03-31"));
        assert_eq!(r.kind, RenewalKind::Renewal);
        assert_eq!(r.period, p("2026-04-01", "2027-03-31"));
        assert_eq!(renewal_deadline(d("2025-03-31")), d("2026-03-31"));
    }

    #[test]
    fn r11_example_first_day_of_recontinuation() {
        let r = renewal(d("2025-03-31"), d("2026-04-01"));
        assert_eq!(r.kind, RenewalKind::RecontinuationRequired);
        assert_eq!(r.period, p("2026-04-01", "2027-03-31"));
    }

    #[test]
    fn r10_renewal_inside_period_follows_seamlessly() {
        for received in ["2026-04-01", "2026-10-15", "2027-03-31"] {
            let r = renewal(d("2027-03-31"), d(received));
            assert_eq!(r.kind, RenewalKind::Renewal);
            assert_eq!(r.period, p("2027-04-01", "2028-03-31"));
        }
    }

    #[test]
    fn r10_renewal_after_period_starts_next_first() {
        let r = renewal(d("2027-03-31"), d("2027-04-02"));
        assert_eq!(r.kind, RenewalKind::Renewal);
        assert_eq!(r.period, p("2027-05-01", "2028-04-30"));
        let r = renewal(d("2027-03-31"), d("2027-06-01"));
        assert_eq!(r.period, p("2027-06-01", "2028-05-31"));
        let r = renewal(d("2027-03-31"), d("2027-12-31"));
        assert_eq!(r.period, p("2028-01-01", "2028-12-31"));
        let r = renewal(d("2027-03-31"), d("2028-02-29"));
        assert_eq!(r.kind, RenewalKind::Renewal);
        assert_eq!(r.period, p("2028-03-01", "2029-02-28"));
    }

    #[test]
    fn r10_day_after_end_on_the_first_is_seamless() {
        let r = renewal(d("2027-03-31"), d("2027-04-01"));
        assert_eq!(r.kind, RenewalKind::Renewal);
        assert_eq!(r.period, p("2027-04-01", "2028-03-31"));
    }

    #[test]
    fn r11_recontinuation_period_uses_first_of_month_rule() {
        let r = renewal(d("2025-03-31"), d("2027-07-20"));
        assert_eq!(r.kind, RenewalKind::RecontinuationRequired);
        assert_eq!(r.period, p("2027-08-01", "2028-07-31"));
    }

    #[test]
    fn r11_boundary_over_leap_day() {
        // The lapse year starts 2028-02-29 and (Civil Code art. 143) ends 2029-02-28.
        assert_eq!(renewal_deadline(d("2028-02-28")), d("2029-02-28"));
        assert_eq!(
            renewal(d("2028-02-28"), d("2029-02-28")).kind,
            RenewalKind::Renewal
        );
        assert_eq!(
            renewal(d("2028-02-28"), d("2029-03-01")).kind,
            RenewalKind::RecontinuationRequired
        );
        assert_eq!(renewal_deadline(d("2027-02-28")), d("2028-02-29"));
    }

    #[test]
    fn order_kind_spelling_round_trips() {
        for kind in [Initial, Ren, Recontinuation] {
            assert_eq!(kind.as_str().parse::<OrderKind>(), Ok(kind));
        }
        assert!("Renewal".parse::<OrderKind>().is_err());
        assert!("".parse::<OrderKind>().is_err());
    }

    #[test]
    fn serialises_for_the_cli() {
        let r = serde_json::to_value(renewal(d("2025-03-31"), d("2026-04-01"))).expect("json");
        assert_eq!(
            r,
            serde_json::json!({"kind": "recontinuation_required", "start": "2026-04-01", "end": "2027-03-31"})
        );
        let r = serde_json::to_value(renewal(d("2025-03-31"), d("2026-03-31"))).expect("json");
        assert_eq!(r["kind"], "renewal");
        let fy = serde_json::to_value(first_year(d("2026-03-15"), None)).expect("json");
        assert_eq!(
            fy,
            serde_json::json!({"start": "2026-04-01", "end": "2027-03-31", "covered_from": "2026-03-15"})
        );
    }

    // --- orders ---

    #[test]
    fn initial_only() {
        let mut o = order(Initial, "2026-03-15");
        o.purchased = Some(d("2026-03-01"));
        let c = periods_from_orders(&[o]).expect("ok");
        assert_eq!(c.covered_from, d("2026-03-01"));
        assert_eq!(ranges(&c), vec![p("2026-04-01", "2027-03-31")]);
        assert_eq!(c.periods[0].kind, Initial);
        assert!(!c.periods[0].from_certificate);
    }

    #[test]
    fn prepaying_several_years_chains() {
        let c = periods_from_orders(&[
            order(Initial, "2026-03-15"),
            order(Ren, "2026-06-01"),
            order(Ren, "2026-07-01"),
            order(Ren, "2027-03-31"),
        ])
        .expect("ok");
        assert_eq!(
            ranges(&c),
            vec![
                p("2026-04-01", "2027-03-31"),
                p("2027-04-01", "2028-03-31"),
                p("2028-04-01", "2029-03-31"),
                p("2029-04-01", "2030-03-31"),
            ]
        );
    }

    #[test]
    fn orders_are_taken_by_received_date() {
        let orders = [
            order(Ren, "2027-05-10"),
            order(Initial, "2026-03-15"),
            order(Ren, "2027-01-10"),
        ];
        let c = periods_from_orders(&orders).expect("ok");
        assert_eq!(
            ranges(&c),
            vec![
                p("2026-04-01", "2027-03-31"),
                p("2027-04-01", "2028-03-31"),
                p("2028-04-01", "2029-03-31"),
            ]
        );
    }

    #[test]
    fn renewal_after_lapse_and_recontinuation() {
        let c = periods_from_orders(&[
            order(Initial, "2024-03-15"),
            order(Ren, "2025-05-20"),
            order(Recontinuation, "2027-06-01"),
        ])
        .expect("ok");
        assert_eq!(
            ranges(&c),
            vec![
                p("2024-04-01", "2025-03-31"),
                p("2025-06-01", "2026-05-31"),
                p("2027-06-01", "2028-05-31"),
            ]
        );
        assert_eq!(c.periods[2].kind, Recontinuation);
    }

    #[test]
    fn r11_examples_through_orders() {
        // E = 2025-03-31 as the end of the initial period.
        let ok = periods_from_orders(&[order(Initial, "2024-04-01"), order(Ren, "2026-03-31")])
            .expect("ok");
        assert_eq!(ranges(&ok)[1], p("2026-04-01", "2027-03-31"));

        let (index, problem) = rejected(&[order(Initial, "2024-04-01"), order(Ren, "2026-04-01")]);
        assert_eq!(index, 1);
        assert_eq!(
            problem,
            OrderProblem::RecontinuationRequired {
                received: d("2026-04-01"),
                last_end: d("2025-03-31"),
                deadline: d("2026-03-31"),
            }
        );
        let msg = problem.to_string();
        assert!(
            msg.contains("2026-04-01") && msg.contains("2025-03-31"),
            "{msg}"
        );
        assert!(msg.contains("再継続年間サポート"), "{msg}");

        let ok = periods_from_orders(&[
            order(Initial, "2024-04-01"),
            order(Recontinuation, "2026-04-01"),
        ])
        .expect("ok");
        assert_eq!(ranges(&ok)[1], p("2026-04-01", "2027-03-31"));
    }

    #[test]
    fn recontinuation_rejected_where_renewal_applies() {
        for received in ["2025-01-10", "2026-03-31"] {
            let (index, problem) = rejected(&[
                order(Initial, "2024-04-01"),
                order(Recontinuation, received),
            ]);
            assert_eq!(index, 1);
            assert!(
                matches!(problem, OrderProblem::RenewalApplies { .. }),
                "{problem:?}"
            );
        }
    }

    #[test]
    fn first_must_be_initial_and_only_first() {
        let (index, problem) = rejected(&[order(Ren, "2026-03-15")]);
        assert_eq!(index, 0);
        assert_eq!(problem, OrderProblem::FirstNotInitial { kind: Ren });

        // The renewal received earlier than the initial is what comes first.
        let (index, _) = rejected(&[order(Initial, "2026-03-15"), order(Ren, "2026-01-01")]);
        assert_eq!(index, 1);

        let (index, problem) =
            rejected(&[order(Initial, "2026-03-15"), order(Initial, "2026-05-01")]);
        assert_eq!(index, 1);
        assert_eq!(
            problem,
            OrderProblem::InitialNotFirst {
                first_received: d("2026-03-15")
            }
        );
    }

    #[test]
    fn equal_received_dates_keep_slice_order() {
        let c = periods_from_orders(&[order(Initial, "2026-03-15"), order(Ren, "2026-03-15")])
            .expect("ok");
        assert_eq!(ranges(&c)[1], p("2027-04-01", "2028-03-31"));
        let (index, _) = rejected(&[order(Ren, "2026-03-15"), order(Initial, "2026-03-15")]);
        assert_eq!(index, 0);
    }

    #[test]
    fn purchased_only_on_initial() {
        let mut r = order(Ren, "2026-06-01");
        r.purchased = Some(d("2026-06-01"));
        let (index, problem) = rejected(&[order(Initial, "2026-03-15"), r]);
        assert_eq!(index, 1);
        assert_eq!(problem, OrderProblem::PurchasedNotInitial { kind: Ren });
    }

    #[test]
    fn no_orders() {
        assert_eq!(periods_from_orders(&[]), Err(OrderError::NoOrders));
        assert_eq!(OrderError::NoOrders.index(), None);
    }

    // --- R12 ---

    #[test]
    fn certificate_overrides_and_later_orders_chain_from_it() {
        let c = periods_from_orders(&[
            with_cert(order(Initial, "2026-03-15"), "2026-03-20", "2027-03-19"),
            order(Ren, "2027-02-01"),
        ])
        .expect("ok");
        assert!(c.periods[0].from_certificate);
        assert!(!c.periods[1].from_certificate);
        assert_eq!(
            ranges(&c),
            vec![p("2026-03-20", "2027-03-19"), p("2027-03-20", "2028-03-19")]
        );
        assert_eq!(c.covered_from, d("2026-03-15"));
    }

    #[test]
    fn certificate_on_renewal_and_r11_measured_from_it() {
        let c = periods_from_orders(&[
            order(Initial, "2026-03-15"),
            with_cert(order(Ren, "2027-02-01"), "2027-04-01", "2028-06-30"),
        ])
        .expect("ok");
        assert_eq!(ranges(&c)[1], p("2027-04-01", "2028-06-30"));
        assert_eq!(renewal_deadline(d("2028-06-30")), d("2029-06-30"));
        // A plain renewal on the deadline computed from the certificate's end is fine…
        let mut orders = vec![
            order(Initial, "2026-03-15"),
            with_cert(order(Ren, "2027-02-01"), "2027-04-01", "2028-06-30"),
            order(Ren, "2029-06-30"),
        ];
        let c = periods_from_orders(&orders).expect("ok");
        assert_eq!(ranges(&c)[2], p("2029-07-01", "2030-06-30"));
        // …the day after, it must be a re-continuation.
        orders[2] = order(Ren, "2029-07-01");
        let (index, problem) = rejected(&orders);
        assert_eq!(index, 2);
        assert!(matches!(
            problem,
            OrderProblem::RecontinuationRequired { .. }
        ));
    }

    #[test]
    fn certificate_problems() {
        let (index, problem) = rejected(&[with_cert(
            order(Initial, "2026-03-15"),
            "2027-04-01",
            "2026-04-01",
        )]);
        assert_eq!(index, 0);
        assert!(matches!(problem, OrderProblem::CertificateReversed { .. }));

        let (index, problem) = rejected(&[
            order(Initial, "2026-03-15"),
            with_cert(order(Ren, "2026-05-01"), "2026-04-01", "2027-03-31"),
        ]);
        assert_eq!(index, 1);
        assert_eq!(
            problem,
            OrderProblem::CertificateNotForward {
                end: d("2027-03-31"),
                last_end: d("2027-03-31")
            }
        );
    }

    #[test]
    fn certificate_does_not_excuse_wrong_kind() {
        let (index, problem) = rejected(&[
            order(Initial, "2024-04-01"),
            with_cert(order(Ren, "2026-04-01"), "2026-04-01", "2027-03-31"),
        ]);
        assert_eq!(index, 1);
        assert!(matches!(
            problem,
            OrderProblem::RecontinuationRequired { .. }
        ));
    }

    // --- status_on ---

    fn sample() -> ContractPeriods {
        // Covered from 2026-03-01, first period 2026-04-01..2027-03-31, renewal received after
        // the end → 2027-06-01..2028-05-31.
        let mut initial = order(Initial, "2026-03-15");
        initial.purchased = Some(d("2026-03-01"));
        periods_from_orders(&[initial, order(Ren, "2027-05-10")]).expect("ok")
    }

    #[test]
    fn status_on_boundaries() {
        use CoverageStatus::*;
        let c = sample();
        let first = p("2026-04-01", "2027-03-31");
        let second = p("2027-06-01", "2028-05-31");
        let cases = [
            (
                "2026-02-28",
                NotYetCovered {
                    starts: d("2026-03-01"),
                },
            ),
            ("2026-03-01", Covered { period: first }),
            ("2026-03-31", Covered { period: first }),
            ("2026-04-01", Covered { period: first }),
            ("2027-03-31", Covered { period: first }),
            (
                "2027-04-01",
                Lapsed {
                    last_end: d("2027-03-31"),
                    resumes: d("2027-06-01"),
                },
            ),
            (
                "2027-05-31",
                Lapsed {
                    last_end: d("2027-03-31"),
                    resumes: d("2027-06-01"),
                },
            ),
            ("2027-06-01", Covered { period: second }),
            ("2028-05-31", Covered { period: second }),
            (
                "2028-06-01",
                Expired {
                    last_end: d("2028-05-31"),
                    next: RenewalKind::Renewal,
                },
            ),
            (
                "2029-05-31",
                Expired {
                    last_end: d("2028-05-31"),
                    next: RenewalKind::Renewal,
                },
            ),
            (
                "2029-06-01",
                Expired {
                    last_end: d("2028-05-31"),
                    next: RenewalKind::RecontinuationRequired,
                },
            ),
        ];
        for (date, want) in cases {
            assert_eq!(status_on(&c, d(date)), want, "on {date}");
        }
    }

    #[test]
    fn status_on_without_early_purchase_and_empty() {
        let c = periods_from_orders(&[order(Initial, "2026-03-15")]).expect("ok");
        assert_eq!(
            status_on(&c, d("2026-03-14")),
            CoverageStatus::NotYetCovered {
                starts: d("2026-03-15")
            }
        );
        assert!(matches!(
            status_on(&c, d("2026-03-15")),
            CoverageStatus::Covered { .. }
        ));
        let empty = ContractPeriods {
            covered_from: d("2026-03-15"),
            periods: vec![],
        };
        assert_eq!(
            status_on(&empty, d("2026-04-01")),
            CoverageStatus::NoPeriods
        );
    }

    #[test]
    fn displays() {
        let c = sample();
        assert_eq!(
            c.periods[0].to_string(),
            "2026-04-01 to 2027-03-31 (initial, received 2026-03-15)"
        );
        assert_eq!(
            status_on(&c, d("2026-05-01")).to_string(),
            "covered (2026-04-01 to 2027-03-31)"
        );
        assert!(
            status_on(&c, d("2029-06-01"))
                .to_string()
                .contains("再継続年間サポート")
        );
        let err = periods_from_orders(&[order(Ren, "2026-03-15")]).expect_err("rejected");
        assert_eq!(err.index(), Some(0));
        assert!(err.to_string().starts_with("order 1: "), "{err}");
    }

    #[test]
    fn status_serialises_with_snake_case_tag() {
        let c = sample();
        let v = serde_json::to_value(status_on(&c, d("2029-06-01"))).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"status": "expired", "last_end": "2028-05-31", "next": "recontinuation_required"})
        );
        let v = serde_json::to_value(status_on(&c, d("2026-02-01"))).expect("json");
        assert_eq!(v["status"], "not_yet_covered");
        let v = serde_json::to_value(status_on(&c, d("2026-05-01"))).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"status": "covered", "period": {"start": "2026-04-01", "end": "2027-03-31"}})
        );
    }

    // --- properties ---

    fn date() -> impl Strategy<Value = NaiveDate> {
        // 1990-01-01 .. ~2190: realistic, with many leap years and month ends.
        (0i64..73_000).prop_map(|n| {
            NaiveDate::from_ymd_opt(1990, 1, 1).expect("base") + chrono::Days::new(n as u64)
        })
    }

    fn is_one_year_from_first(period: SupportPeriod) -> bool {
        let expected_end = period
            .start
            .with_year(period.start.year() + 1)
            .and_then(|d| d.pred_opt());
        period.start.day() == 1 && Some(period.end) == expected_end
    }

    proptest! {
        #[test]
        fn prop_first_year_is_one_year_from_a_first(received in date(), purchased in proptest::option::of(date())) {
            let fy = first_year(received, purchased);
            prop_assert!(is_one_year_from_first(fy.period));
            prop_assert!(fy.period.start >= received);
            prop_assert!(fy.period.start - received < chrono::TimeDelta::days(31));
            prop_assert!(fy.covered_from <= fy.period.start);
        }

        #[test]
        fn prop_renewal_starts_after_last_end(last_end in date(), offset in -800i64..1200) {
            let received = last_end + chrono::TimeDelta::days(offset);
            let r = renewal(last_end, received);
            prop_assert!(r.period.start > last_end);
            prop_assert_eq!(r.period, SupportPeriod::one_year_from(r.period.start));
            if received > last_end {
                // After the end the 1st-of-month rule applies, so it is exactly a year from a 1st.
                prop_assert!(is_one_year_from_first(r.period));
            } else {
                prop_assert_eq!(r.period.start, last_end.succ_opt().expect("in range"));
                prop_assert_eq!(r.kind, RenewalKind::Renewal);
            }
        }

        #[test]
        fn prop_recontinuation_boundary_is_monotone(last_end in date(), a in -400i64..1200, b in -400i64..1200) {
            let (early, late) = (a.min(b), a.max(b));
            let k_early = renewal(last_end, last_end + chrono::TimeDelta::days(early)).kind;
            let k_late = renewal(last_end, last_end + chrono::TimeDelta::days(late)).kind;
            if k_early == RenewalKind::RecontinuationRequired {
                prop_assert_eq!(k_late, RenewalKind::RecontinuationRequired);
            }
            // And the boundary sits exactly after the deadline.
            let deadline = renewal_deadline(last_end);
            prop_assert_eq!(renewal(last_end, deadline).kind, RenewalKind::Renewal);
            prop_assert_eq!(
                renewal(last_end, deadline.succ_opt().expect("in range")).kind,
                RenewalKind::RecontinuationRequired
            );
        }

        #[test]
        fn prop_valid_chains_move_forward(initial in date(), gaps in proptest::collection::vec(0i64..900, 0..6)) {
            // Build orders each choosing the kind R11 demands; the result must be accepted
            // and each period must end after the previous one.
            let mut orders = vec![Order { kind: OrderKind::Initial, received: initial, purchased: None, certificate: None }];
            let mut last_end = first_year(initial, None).period.end;
            let mut received = initial;
            for gap in gaps {
                received += chrono::TimeDelta::days(gap);
                let r = renewal(last_end, received);
                let kind = match r.kind {
                    RenewalKind::Renewal => OrderKind::Renewal,
                    RenewalKind::RecontinuationRequired => OrderKind::Recontinuation,
                };
                orders.push(Order { kind, received, purchased: None, certificate: None });
                last_end = r.period.end;
            }
            let c = periods_from_orders(&orders).expect("valid chain");
            prop_assert_eq!(c.periods.len(), orders.len());
            for w in c.periods.windows(2) {
                prop_assert!(w[1].period.start > w[0].period.end);
            }
            // status_on never panics and agrees with containment.
            for p in &c.periods {
                let covered = matches!(status_on(&c, p.period.start), CoverageStatus::Covered { .. });
                prop_assert!(covered);
            }
        }
    }
}
