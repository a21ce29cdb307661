//! A member's status as a reconcile builds it up: conditions set one step at
//! a time and written as each step ends, so `kubectl describe` shows where
//! a join stands (and where it stopped) while it runs.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use serde_json::{Value, json};

use kubeseed_crds::v1alpha1::Phase;

use super::{Member, write_status};
use crate::conditions::{Desired, merge};
use crate::error::Result;

/// The status being written for one object.
#[derive(Debug)]
pub struct StatusBook<'a, K: Member> {
    api: &'a Api<K>,
    name: String,
    generation: Option<i64>,
    existing: Vec<Condition>,
    desired: BTreeMap<&'static str, Desired>,
    phase: Phase,
    extra: serde_json::Map<String, Value>,
}

impl<'a, K: Member> StatusBook<'a, K> {
    /// Starts from what `obj`'s status says now.
    pub fn new(api: &'a Api<K>, obj: &K, name: &str) -> Self {
        let existing = obj.conditions().to_vec();
        // Every write is a server-side apply of the whole status by one
        // field manager: a field left out would be removed. What earlier
        // reconciles recorded (the first-seen host key above all) is carried
        // over unless this one sets it anew.
        let mut extra = serde_json::Map::new();
        if let Ok(Value::Object(mut whole)) = serde_json::to_value(obj)
            && let Some(Value::Object(status)) = whole.remove("status")
        {
            extra = status;
            for own in ["phase", "conditions", "observedGeneration"] {
                extra.remove(own);
            }
        }
        StatusBook {
            api,
            name: name.to_owned(),
            generation: obj.meta().generation,
            existing,
            desired: BTreeMap::new(),
            phase: Phase::Provisioning,
            extra,
        }
    }

    /// Sets one condition.
    pub fn set(
        &mut self,
        type_: &'static str,
        ok: bool,
        reason: &'static str,
        message: impl Into<String>,
    ) -> &mut Self {
        self.desired.insert(
            type_,
            Desired {
                type_,
                status: if ok { "True" } else { "False" },
                reason,
                message: message.into(),
            },
        );
        self
    }

    /// Sets the phase.
    pub fn phase(&mut self, phase: Phase) -> &mut Self {
        self.phase = phase;
        self
    }

    /// Sets a top-level status field besides the conditions.
    pub fn field(&mut self, key: &str, value: Value) -> &mut Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// Writes what has been set so far.
    pub async fn write(&mut self) -> Result<()> {
        let desired: Vec<Desired> = self.desired.values().cloned().collect();
        let mut conditions = merge(&self.existing, &desired, self.generation, Timestamp::now());
        // Conditions this reconcile did not touch stay as they were.
        conditions.extend(
            self.existing
                .iter()
                .filter(|c| !self.desired.contains_key(c.type_.as_str()))
                .cloned(),
        );
        conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
        let mut status = json!({
            "phase": self.phase,
            "conditions": conditions,
            "observedGeneration": self.generation,
        });
        if let Some(map) = status.as_object_mut() {
            map.extend(self.extra.clone());
        }
        write_status::<K>(self.api, &self.name, status).await?;
        self.existing = conditions;
        Ok(())
    }
}
