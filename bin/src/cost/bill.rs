//! A bill: its line items, whose they are, and the totals.

use serde::Serialize;

use super::prices::Price;

/// Whose bill a line is: Spate's own, or the producer's (upstream ingestion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Spate's consumption: compute, reads, hot and cold storage, metrics.
    Spate,
    /// Putting the events into the queue or stream (paid by the producer).
    Upstream,
}

/// One line of the bill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineItem {
    /// The service.
    pub service: &'static str,
    /// What is billed.
    pub item: &'static str,
    /// How many units a month.
    pub quantity: f64,
    /// The unit (the price's).
    pub unit: &'static str,
    /// US dollars per unit.
    pub unit_usd: f64,
    /// `quantity × unit_usd`.
    pub usd_per_month: f64,
    /// Spate's or upstream.
    pub scope: Scope,
    /// How the quantity follows from the inputs.
    pub basis: String,
}

pub fn line(
    service: &'static str,
    item: &'static str,
    quantity: f64,
    price: Price,
    scope: Scope,
    basis: String,
) -> LineItem {
    // Prices per thousand or million units: the quantity is in those units.
    LineItem {
        service,
        item,
        quantity,
        unit: price.unit,
        unit_usd: price.usd,
        usd_per_month: quantity * price.usd,
        scope,
        basis,
    }
}

/// The bill: line items and totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bill {
    /// The lines.
    pub items: Vec<LineItem>,
    /// Sum of every line.
    pub total_usd_per_month: f64,
    /// Sum of Spate's lines (upstream ingestion left out).
    pub spate_usd_per_month: f64,
    /// Spate's lines per billion events.
    pub spate_usd_per_billion_events: f64,
    /// What would make the same load cheaper (the hot table's other
    /// billing mode, or compressed message bodies, when either saves more
    /// than 0.50 USD a month).
    pub notes: Vec<String>,
}

impl Bill {
    pub fn of(items: Vec<LineItem>, events_per_month: f64) -> Bill {
        let total = items.iter().map(|i| i.usd_per_month).sum();
        let spate: f64 = items
            .iter()
            .filter(|i| i.scope == Scope::Spate)
            .map(|i| i.usd_per_month)
            .sum();
        Bill {
            items,
            total_usd_per_month: total,
            spate_usd_per_month: spate,
            spate_usd_per_billion_events: spate / events_per_month * 1e9,
            notes: Vec::new(),
        }
    }
}
