//! `contracts import` (`src/import`): contracts.csv and orders.csv, checked together. Input:
//! `contracts.csv \0 orders.csv` (no `\0`: no orders file). What the check accepts the store
//! takes, a second import of it changes nothing, it reads back as given, and every contract
//! with orders has support periods (R9–R11).

use std::collections::BTreeSet;

use madoguchi::core::contract::Contract;
use madoguchi::core::ticket::ContractFacts;
use madoguchi::import::{check_import, parse_contracts, parse_orders};
use madoguchi::store::Store;

pub fn run(data: &[u8]) {
    let (contracts_csv, orders_csv) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    // Each parser alone never panics, whatever the bytes.
    let alone = parse_contracts("contracts.csv", contracts_csv);
    if let Some(o) = orders_csv {
        let _ = parse_orders("orders.csv", o);
    }
    let mut orders_reader = orders_csv.unwrap_or_default();
    let checked = check_import(
        "contracts.csv",
        contracts_csv,
        orders_csv.map(|_| ("orders.csv", &mut orders_reader as &mut dyn std::io::Read)),
        &[],
    );
    let Ok(files) = checked else {
        return;
    };
    assert_eq!(
        alone.as_ref().ok(),
        Some(&files.contracts),
        "check_import and parse_contracts agree"
    );
    let ids: BTreeSet<&str> = files
        .contracts
        .iter()
        .map(|c| c.contract_id.as_str())
        .collect();
    assert_eq!(
        ids.len(),
        files.contracts.len(),
        "duplicate contract ids accepted"
    );
    for o in files.orders.iter().flatten() {
        assert!(
            ids.contains(o.contract_id.as_str()),
            "order for unknown {}",
            o.contract_id
        );
    }

    let Ok(mut store) = Store::open_in_memory() else {
        return;
    };
    store
        .import_contracts(&files.contracts, files.orders.as_deref())
        .expect("the store takes what the check accepted");
    let again = store
        .import_contracts(&files.contracts, files.orders.as_deref())
        .expect("a second import");
    assert_eq!(
        (again.contracts_added, again.contracts_updated),
        (0, 0),
        "{again:?}"
    );
    let stored = store.contracts().expect("contracts read back");
    assert_eq!(stored.len(), files.contracts.len());
    // Contacts and domains are sets: the store gives them back sorted.
    let as_set = |c: &Contract| {
        let mut c = c.clone();
        c.contacts.sort();
        c.domains.sort();
        c
    };
    for s in stored {
        assert!(
            files
                .contracts
                .iter()
                .any(|c| as_set(c) == as_set(&s.contract)),
            "{:?} read back changed",
            s.contract
        );
        let has_orders = files
            .orders
            .iter()
            .flatten()
            .any(|o| o.contract_id == s.contract.contract_id);
        if has_orders {
            let facts = ContractFacts::from_orders(s.contract, &s.orders);
            assert!(
                facts.periods.is_ok(),
                "accepted orders without periods: {:?}",
                facts.periods
            );
        }
    }
}
