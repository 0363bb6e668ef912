//! verify: is a listing's broker a licensed one? The registry (`brokers.v1`, one record per person per
//! office) is a global table that every instance reads whole, like Kafka Streams' GlobalKTable.
//!
//! A listing is verified when its normalized registration number matches a licensed entry (중개업자종별
//! 2 or 3 with a certificate number, the seed's rule) and, when the payload names a person, that person is
//! registered at the office. Unverified listings keep flowing with the flag off and the reason spelled
//! out — the seed's silent `is_safe` filter (docs/platforms.md §5, §11) is not copied.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::BrokerRef;
use crate::topics::envelope::BrokerRecord;

/// One person at one office.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Whether the seed's licence rule holds for this person.
    pub licensed: bool,
    /// The office's name, when the registry has it.
    pub office: Option<String>,
}

/// The registry: normalized registration number → person → entry.
#[derive(Debug, Clone, Default)]
pub struct BrokerTable {
    offices: BTreeMap<String, BTreeMap<String, Entry>>,
}

/// The verdict kept with a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// `verified`, `unverified` or `unknown` (the listing names no broker).
    pub status: String,
    /// Normalized registration number the listing names.
    pub registration_number: Option<String>,
    /// The person it names.
    pub person: Option<String>,
    /// The office it names.
    pub office: Option<String>,
    /// Why, in words.
    pub reason: String,
}

impl Verification {
    /// Whether the broker is verified.
    pub fn verified(&self) -> bool {
        self.status == "verified"
    }
}

impl BrokerTable {
    /// Applies a registry record; returns the registration number it touched.
    pub fn apply(&mut self, r: &BrokerRecord) -> String {
        let licensed = matches!(r.broker_kind_code, Some(2) | Some(3))
            && r.certificate_number
                .as_deref()
                .is_some_and(|c| !c.trim().is_empty());
        self.offices
            .entry(r.registration_number.clone())
            .or_default()
            .insert(
                r.person_name.trim().to_string(),
                Entry {
                    licensed,
                    office: r.office_name.clone(),
                },
            );
        r.registration_number.clone()
    }

    /// Removes a person (a tombstone on the compacted topic, key `number|person`).
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let (number, person) = key.split_once('|')?;
        let office = self.offices.get_mut(number)?;
        office.remove(person);
        if office.is_empty() {
            self.offices.remove(number);
        }
        Some(number.to_string())
    }

    /// People in the registry.
    pub fn len(&self) -> usize {
        self.offices.values().map(BTreeMap::len).sum()
    }

    /// Whether the registry is empty.
    pub fn is_empty(&self) -> bool {
        self.offices.is_empty()
    }

    /// Verifies the broker a listing names.
    pub fn verify(&self, broker: Option<&BrokerRef>) -> Verification {
        let Some(b) = broker else {
            return Verification {
                status: "unknown".into(),
                registration_number: None,
                person: None,
                office: None,
                reason: "the listing names no broker registration number".into(),
            };
        };
        let verdict = |status: &str, reason: String| Verification {
            status: status.into(),
            registration_number: Some(b.registration_number.clone()),
            person: b.person.clone(),
            office: b.office.clone(),
            reason,
        };
        let Some(office) = self.offices.get(&b.registration_number) else {
            return verdict(
                "unverified",
                format!(
                    "registration number {} is not in the registry",
                    b.registration_number
                ),
            );
        };
        match &b.person {
            Some(person) => match office.get(person) {
                Some(e) if e.licensed => verdict(
                    "verified",
                    format!("{person} is a licensed broker of this office"),
                ),
                Some(_) => verdict(
                    "unverified",
                    format!("{person} is registered but not licensed"),
                ),
                None => verdict(
                    "unverified",
                    format!("{person} is not registered at this office"),
                ),
            },
            None if office.values().any(|e| e.licensed) => {
                verdict("verified", "the office has a licensed broker".into())
            }
            None => verdict("unverified", "the office has no licensed broker".into()),
        }
    }
}
