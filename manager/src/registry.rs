//! The registry of instances, built from the broker's connection events
//! (`$SYS.ACCOUNT.<account>.CONNECT` / `DISCONNECT`, from every node of the supercluster) and,
//! at start, from each node's list of connections. Metadata only: who is connected where,
//! never what they say.
//!
//! An instance is who the broker authenticated: the public key of its user JWT, in a user's
//! account, with the sensor or collector role its JWT's tags carry (`role:sensor`). Its name,
//! also a tag (`instance:eu-sensor`), is a label. Watch
//! clients, and tools that borrow an instance's credentials under another connection name
//! (`flowmesh control`, `flowmesh watch`), are not instances.

use std::collections::BTreeMap;

use flowmesh_proto::v1::CloudInstance;
use serde_json::Value;

use crate::broker::Role;

/// One instance, keyed by its user public key.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The user (account name).
    pub user: String,
    /// The instance's name (its JWT's name).
    pub instance: String,
    /// Its role.
    pub role: String,
    /// Connections open now, by (node, client id): a reconnect to another node and the
    /// disconnect event of the old one may arrive in either order. Not kept across restarts:
    /// the inventory at start finds them again.
    #[serde(skip)]
    open: BTreeMap<(String, u64), Where>,
    /// Connects seen since the manager started.
    pub connects: u64,
    /// Last connect or disconnect, µs.
    pub last_seen: i64,
    /// Where it was last connected.
    pub last: Where,
}

impl Entry {
    /// A connection of it opened at `slot` (node, client id), `at` that place.
    fn opened(&mut self, slot: (String, u64), at: Where) {
        self.open.insert(slot, at.clone());
        self.last = at;
    }
}

/// Where a connection is.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Where {
    /// Region (the node's cluster name).
    pub region: String,
    /// Node (server name).
    pub node: String,
    /// The client's address.
    pub host: String,
}

/// Every instance heard of, by user public key.
#[derive(Debug, Default)]
pub struct Registry {
    instances: BTreeMap<String, Entry>,
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or("")
}

fn micros_of(text: &str) -> Option<i64> {
    flowmesh_link::time::parse_rfc3339_micros(text)
}

/// What an event said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A connection opened.
    Connected,
    /// A connection closed.
    Disconnected,
    /// Not about a cloud user's instance.
    Ignored,
}

/// One connection as an event or a connection list describes it.
struct Conn<'a> {
    account: &'a str,
    key: &'a str,
    name: &'a str,
    tags: Vec<&'a str>,
    cid: u64,
}

impl<'a> Conn<'a> {
    /// The instance it is — `(key, user, instance, role)` — or `None` for anything else.
    fn instance(
        &self,
        user_of: &dyn Fn(&str) -> Option<String>,
    ) -> Option<(String, String, String, Role)> {
        let user = user_of(self.account)?;
        let role = Role::from_tags(self.tags.iter().copied())?;
        let instance = crate::broker::roles::instance_from_tags(self.tags.iter().copied())?;
        let instance_role = matches!(role, Role::Sensor | Role::Collector);
        // A daemon connects under its own name; a tool with its credentials under another.
        (instance_role && !self.key.is_empty() && self.name == instance)
            .then(|| (self.key.to_string(), user, instance.to_string(), role))
    }
}

fn tags_of(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

impl Registry {
    /// The entry of the instance `conn` is (named, and seen at `time`), or `None` if it is
    /// none.
    fn entry_of(
        &mut self,
        conn: &Conn<'_>,
        time: i64,
        user_of: &dyn Fn(&str) -> Option<String>,
    ) -> Option<&mut Entry> {
        let (key, user, instance, role) = conn.instance(user_of)?;
        let e = self.instances.entry(key).or_default();
        e.user = user;
        e.instance = instance;
        e.role = role.name().to_string();
        e.last_seen = e.last_seen.max(time);
        Some(e)
    }

    /// Applies a connect or disconnect advisory (its JSON). `now` stands in for a missing
    /// time; `user_of` names the user of an account public key (`None`: not a user's).
    pub fn event(
        &mut self,
        json: &[u8],
        now: i64,
        user_of: &dyn Fn(&str) -> Option<String>,
    ) -> Seen {
        let Ok(v) = serde_json::from_slice::<Value>(json) else {
            return Seen::Ignored;
        };
        let connected = match str_of(&v, &["type"]) {
            "io.nats.server.advisory.v1.client_connect" => true,
            "io.nats.server.advisory.v1.client_disconnect" => false,
            _ => return Seen::Ignored,
        };
        let c = &v["client"];
        let conn = Conn {
            account: str_of(c, &["acc"]),
            key: str_of(c, &["user"]),
            name: str_of(c, &["name"]),
            tags: tags_of(&c["tags"]),
            cid: c["id"].as_u64().unwrap_or(0),
        };
        let at = Where {
            region: str_of(&v, &["server", "cluster"]).to_string(),
            node: str_of(&v, &["server", "name"]).to_string(),
            host: str_of(c, &["host"]).to_string(),
        };
        let time = micros_of(str_of(&v, &["timestamp"])).unwrap_or(now);
        let slot = (at.node.clone(), conn.cid);
        let Some(e) = self.entry_of(&conn, time, user_of) else {
            return Seen::Ignored;
        };
        if connected {
            e.connects += 1;
            e.opened(slot, at);
            Seen::Connected
        } else {
            e.open.remove(&slot);
            if e.open.is_empty() {
                e.last = at;
            }
            Seen::Disconnected
        }
    }

    /// Adds the connections one node lists (its `CONNZ` answer, with `auth`), as of `now`.
    pub fn seed(&mut self, connz: &[u8], now: i64, user_of: &dyn Fn(&str) -> Option<String>) {
        let Ok(v) = serde_json::from_slice::<Value>(connz) else {
            return;
        };
        let node = str_of(&v, &["server", "name"]).to_string();
        let region = str_of(&v, &["server", "cluster"]).to_string();
        let Some(list) = v["data"]["connections"].as_array() else {
            return;
        };
        for c in list {
            let conn = Conn {
                account: str_of(c, &["account"]),
                key: str_of(c, &["authorized_user"]),
                name: str_of(c, &["name"]),
                tags: tags_of(&c["tags"]),
                cid: c["cid"].as_u64().unwrap_or(0),
            };
            let at = Where {
                region: region.clone(),
                node: node.clone(),
                host: str_of(c, &["ip"]).to_string(),
            };
            if let Some(e) = self.entry_of(&conn, now, user_of) {
                e.opened((node.clone(), conn.cid), at);
            }
        }
    }

    /// Forgets every instance whose key is not enrolled any more (revoked).
    pub fn retain_enrolled(&mut self, enrolled: &dyn Fn(&str) -> bool) {
        self.instances.retain(|key, _| enrolled(key));
    }

    /// What is kept across restarts: every instance's counts, last seen and last place.
    pub fn save(&self) -> serde_json::Value {
        Value::Array(
            self.instances
                .iter()
                .map(|(k, e)| serde_json::json!({"key": k, "entry": e}))
                .collect(),
        )
    }

    /// Takes back what [`Registry::save`] kept; every instance starts offline until the
    /// inventory or an event says otherwise.
    pub fn restore(&mut self, saved: &Value) -> Result<(), String> {
        let list = saved.as_array().ok_or("not a list")?;
        for item in list {
            let entry: Entry =
                serde_json::from_value(item["entry"].clone()).map_err(|e| e.to_string())?;
            let Some(k) = item["key"].as_str() else {
                return Err("an entry without a key".into());
            };
            self.instances.insert(k.to_string(), entry);
        }
        Ok(())
    }

    /// Every instance (of `user` only, if given), as the API shows them.
    pub fn list(&self, user: Option<&str>) -> Vec<CloudInstance> {
        let mut l: Vec<CloudInstance> = self
            .instances
            .iter()
            .filter(|(_, e)| user.is_none_or(|w| w == e.user))
            .map(|(k, e)| CloudInstance {
                user: e.user.clone(),
                instance: e.instance.clone(),
                online: !e.open.is_empty(),
                connections: e.open.len() as u32,
                connects: e.connects,
                last_seen_us: e.last_seen,
                region: e.last.region.clone(),
                node: e.last.node.clone(),
                host: e.last.host.clone(),
                role: e.role.clone(),
                key: k.clone(),
            })
            .collect();
        l.sort_by(|a, b| (&a.user, &a.instance).cmp(&(&b.user, &b.instance)));
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(acc: &str) -> Option<String> {
        (acc == "ACC_ALICE").then(|| "alice".to_string())
    }

    fn event(kind: &str, key: &str, name: &str, role: &str, node: &str, cid: u64) -> Vec<u8> {
        serde_json::json!({
            "type": format!("io.nats.server.advisory.v1.client_{kind}"),
            "timestamp": "2026-11-22T08:00:00Z",
            "server": {"name": node, "cluster": &node[..2]},
            "client": {"acc": "ACC_ALICE", "user": key, "name": name, "name_tag": "alice",
                       "tags": [format!("role:{role}"), "instance:eu-sensor"], "id": cid,
                       "host": "10.1.1.1"},
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn connects_and_disconnects_in_any_order_across_nodes() {
        let mut r = Registry::default();
        let ev = |kind, node, cid| event(kind, "UKEY", "eu-sensor", "sensor", node, cid);
        assert_eq!(
            r.event(&ev("connect", "eu-1", 5), 0, &users),
            Seen::Connected
        );
        // The node dies; the client reconnects to eu-2 before eu-1's disconnect is heard.
        r.event(&ev("connect", "eu-2", 9), 0, &users);
        r.event(&ev("disconnect", "eu-1", 5), 0, &users);
        let l = r.list(None);
        assert_eq!(l.len(), 1);
        assert!(l[0].online);
        assert_eq!((l[0].connections, l[0].connects), (1, 2));
        assert_eq!((l[0].region.as_str(), l[0].node.as_str()), ("eu", "eu-2"));
        assert_eq!((l[0].key.as_str(), l[0].role.as_str()), ("UKEY", "sensor"));
        assert_eq!(l[0].last_seen_us, 1_795_334_400_000_000);
        r.event(&ev("disconnect", "eu-2", 9), 0, &users);
        assert!(!r.list(Some("alice"))[0].online);
        assert!(r.list(Some("bob")).is_empty());
    }

    #[test]
    fn watch_clients_tools_unknown_accounts_and_garbage_are_not_instances() {
        let mut r = Registry::default();
        // A watch client.
        let watch = event("connect", "UW", "eu-sensor", "watch", "eu-1", 1);
        assert_eq!(r.event(&watch, 0, &users), Seen::Ignored);
        // A CLI tool borrowing a sensor's credentials under another connection name.
        let tool = event("connect", "UKEY", "cli:eu-sensor", "sensor", "eu-1", 2);
        assert_eq!(r.event(&tool, 0, &users), Seen::Ignored);
        // The manager's own accounts (unknown to `users`) and garbage.
        let mut sys: Value =
            serde_json::from_slice(&event("connect", "UM", "eu-sensor", "sensor", "eu-1", 3))
                .unwrap();
        sys["client"]["acc"] = "ACC_SYS".into();
        assert_eq!(
            r.event(sys.to_string().as_bytes(), 0, &users),
            Seen::Ignored
        );
        assert_eq!(r.event(b"not json", 0, &users), Seen::Ignored);
        assert!(r.list(None).is_empty());
    }

    #[test]
    fn a_restart_keeps_what_was_known_and_forgets_who_is_online_and_who_was_revoked() {
        let mut r = Registry::default();
        r.event(
            &event("connect", "UKEY", "eu-sensor", "sensor", "eu-1", 5),
            0,
            &users,
        );
        let mut again = Registry::default();
        again.restore(&r.save()).unwrap();
        let l = again.list(None);
        assert_eq!(l.len(), 1);
        assert_eq!((l[0].connects, l[0].online), (1, false));
        assert_eq!((l[0].node.as_str(), l[0].user.as_str()), ("eu-1", "alice"));
        assert!(again.restore(&serde_json::json!({"x": 1})).is_err());
        again.retain_enrolled(&|k| k != "UKEY");
        assert!(again.list(None).is_empty());
    }

    #[test]
    fn a_connection_list_seeds_the_registry() {
        let mut r = Registry::default();
        let connz = serde_json::json!({
            "server": {"name": "us-1", "cluster": "us"},
            "data": {"connections": [
                {"cid": 3, "name": "us-collector", "name_tag": "alice",
                 "tags": ["role:collector", "instance:us-collector"],
                 "account": "ACC_ALICE", "authorized_user": "UC", "ip": "127.0.0.1"},
                {"cid": 4, "name": "manager", "name_tag": "CLOUD", "tags": ["role:manager"],
                 "account": "ACC_CLOUD", "authorized_user": "UM", "ip": "127.0.0.1"}
            ]}
        });
        r.seed(connz.to_string().as_bytes(), 42, &users);
        let l = r.list(None);
        assert_eq!(l.len(), 1);
        assert_eq!(
            (l[0].user.as_str(), l[0].instance.as_str()),
            ("alice", "us-collector")
        );
        assert!(l[0].online && l[0].last_seen_us == 42);
    }
}
