//! The registry of users and instances, built from the broker's connection events
//! (`$SYS.ACCOUNT.<account>.CONNECT` / `DISCONNECT`, from every node of the supercluster) and,
//! at start, from each node's list of connections. Metadata only: who is connected where,
//! never what they say.

use std::collections::BTreeMap;

use flowmesh_proto::v1::CloudInstance;
use serde_json::Value;

/// Accounts that are not cloud users.
const INTERNAL: &[&str] = &["SYS", "CLOUD", "$G", "$SYS"];

/// One instance: `(user, instance)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
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

/// Every instance heard of.
#[derive(Debug, Default)]
pub struct Registry {
    instances: BTreeMap<(String, String), Entry>,
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

impl Registry {
    /// Applies a connect or disconnect advisory (its JSON). `now` stands in for a missing time.
    pub fn event(&mut self, json: &[u8], now: i64) -> Seen {
        let Ok(v) = serde_json::from_slice::<Value>(json) else {
            return Seen::Ignored;
        };
        let kind = str_of(&v, &["type"]);
        let connected = match kind {
            "io.nats.server.advisory.v1.client_connect" => true,
            "io.nats.server.advisory.v1.client_disconnect" => false,
            _ => return Seen::Ignored,
        };
        let account = str_of(&v, &["client", "acc"]);
        let name = str_of(&v, &["client", "name"]);
        if account.is_empty() || INTERNAL.contains(&account) {
            return Seen::Ignored;
        }
        let at = Where {
            region: str_of(&v, &["server", "cluster"]).to_string(),
            node: str_of(&v, &["server", "name"]).to_string(),
            host: str_of(&v, &["client", "host"]).to_string(),
        };
        let cid = v["client"]["id"].as_u64().unwrap_or(0);
        let time = micros_of(str_of(&v, &["timestamp"])).unwrap_or(now);
        let instance = if name.is_empty() { "(unnamed)" } else { name };
        let e = self
            .instances
            .entry((account.to_string(), instance.to_string()))
            .or_default();
        e.last_seen = e.last_seen.max(time);
        let key = (at.node.clone(), cid);
        if connected {
            e.connects += 1;
            e.open.insert(key, at.clone());
            e.last = at;
            Seen::Connected
        } else {
            e.open.remove(&key);
            if e.open.is_empty() {
                e.last = at;
            }
            Seen::Disconnected
        }
    }

    /// Adds the connections one node lists (its `CONNZ` answer, with `auth`), as of `now`.
    pub fn seed(&mut self, connz: &[u8], now: i64) {
        let Ok(v) = serde_json::from_slice::<Value>(connz) else {
            return;
        };
        let node = str_of(&v, &["server", "name"]).to_string();
        let region = str_of(&v, &["server", "cluster"]).to_string();
        let Some(list) = v["data"]["connections"].as_array() else {
            return;
        };
        for c in list {
            let account = c["account"].as_str().unwrap_or("");
            if account.is_empty() || INTERNAL.contains(&account) {
                continue;
            }
            let name = c["name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or("(unnamed)");
            let at = Where {
                region: region.clone(),
                node: node.clone(),
                host: c["ip"].as_str().unwrap_or("").to_string(),
            };
            let e = self
                .instances
                .entry((account.to_string(), name.to_string()))
                .or_default();
            e.last_seen = e.last_seen.max(now);
            e.open
                .insert((node.clone(), c["cid"].as_u64().unwrap_or(0)), at.clone());
            e.last = at;
        }
    }

    /// What is kept across restarts: every instance's counts, last seen and last place.
    pub fn save(&self) -> serde_json::Value {
        Value::Array(
            self.instances
                .iter()
                .map(|((u, i), e)| serde_json::json!({"user": u, "instance": i, "entry": e}))
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
            let (Some(u), Some(i)) = (item["user"].as_str(), item["instance"].as_str()) else {
                return Err("an entry without user or instance".into());
            };
            self.instances.insert((u.to_string(), i.to_string()), entry);
        }
        Ok(())
    }

    /// Every instance (of `user` only, if given), as the API shows them.
    pub fn list(&self, user: Option<&str>) -> Vec<CloudInstance> {
        self.instances
            .iter()
            .filter(|((u, _), _)| user.is_none_or(|w| w == u))
            .map(|((u, i), e)| CloudInstance {
                user: u.clone(),
                instance: i.clone(),
                online: !e.open.is_empty(),
                connections: e.open.len() as u32,
                connects: e.connects,
                last_seen_us: e.last_seen,
                region: e.last.region.clone(),
                node: e.last.node.clone(),
                host: e.last.host.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, acc: &str, name: &str, node: &str, cid: u64, ts: &str) -> Vec<u8> {
        serde_json::json!({
            "type": format!("io.nats.server.advisory.v1.client_{kind}"),
            "timestamp": ts,
            "server": {"name": node, "cluster": &node[..2]},
            "client": {"acc": acc, "name": name, "id": cid, "host": "10.1.1.1"},
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn connects_and_disconnects_in_any_order_across_nodes() {
        let mut r = Registry::default();
        let t = "2026-11-22T08:00:00Z";
        assert_eq!(
            r.event(&event("connect", "alice", "eu-sensor", "eu-1", 5, t), 0),
            Seen::Connected
        );
        // The node dies; the client reconnects to eu-2 before eu-1's disconnect is heard.
        r.event(&event("connect", "alice", "eu-sensor", "eu-2", 9, t), 0);
        r.event(&event("disconnect", "alice", "eu-sensor", "eu-1", 5, t), 0);
        let l = r.list(None);
        assert_eq!(l.len(), 1);
        assert!(l[0].online);
        assert_eq!((l[0].connections, l[0].connects), (1, 2));
        assert_eq!((l[0].region.as_str(), l[0].node.as_str()), ("eu", "eu-2"));
        assert_eq!(l[0].last_seen_us, 1_795_334_400_000_000);
        r.event(&event("disconnect", "alice", "eu-sensor", "eu-2", 9, t), 0);
        assert!(!r.list(Some("alice"))[0].online);
        assert!(r.list(Some("bob")).is_empty());
        // The manager's own accounts and garbage are not instances.
        assert_eq!(
            r.event(&event("connect", "SYS", "manager", "eu-1", 1, t), 0),
            Seen::Ignored
        );
        assert_eq!(r.event(b"not json", 0), Seen::Ignored);
        assert_eq!(r.list(None).len(), 1);
    }

    #[test]
    fn a_restart_keeps_what_was_known_and_forgets_who_is_online() {
        let mut r = Registry::default();
        let t = "2026-11-22T08:00:00Z";
        r.event(&event("connect", "alice", "eu-sensor", "eu-1", 5, t), 0);
        let mut again = Registry::default();
        again.restore(&r.save()).unwrap();
        let l = again.list(None);
        assert_eq!(l.len(), 1);
        assert_eq!((l[0].connects, l[0].online), (1, false));
        assert_eq!(l[0].node, "eu-1");
        assert!(again.restore(&serde_json::json!({"x": 1})).is_err());
    }

    #[test]
    fn a_connection_list_seeds_the_registry() {
        let mut r = Registry::default();
        let connz = serde_json::json!({
            "server": {"name": "us-1", "cluster": "us"},
            "data": {"connections": [
                {"cid": 3, "name": "us-collector", "account": "alice", "ip": "127.0.0.1"},
                {"cid": 4, "name": "manager", "account": "CLOUD", "ip": "127.0.0.1"}
            ]}
        });
        r.seed(connz.to_string().as_bytes(), 42);
        let l = r.list(None);
        assert_eq!(l.len(), 1);
        assert_eq!(
            (l[0].user.as_str(), l[0].instance.as_str()),
            ("alice", "us-collector")
        );
        assert!(l[0].online && l[0].last_seen_us == 42);
    }
}
