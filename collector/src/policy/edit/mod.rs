//! Edits of a policy file, for the collector's API and `flowmesh policy` subcommands.
//!
//! Each edit changes the TOML text in place (toml_edit keeps the comments and layout the user
//! wrote) and the result is validated exactly as `flowmesh policy validate` does: an edit that
//! would leave an invalid policy returns the same errors, with lines of the file it would have
//! produced, and changes nothing.

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

use super::{Cidr, Mac, Policy, Problem, Report, acl, parse};

/// The lists of `[host_policy]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostList {
    /// `restricted`
    Restricted,
    /// `core`
    Core,
    /// `whitelisted`
    Whitelisted,
}

impl HostList {
    /// The key in `[host_policy]`.
    pub fn key(self) -> &'static str {
        match self {
            HostList::Restricted => "restricted",
            HostList::Core => "core",
            HostList::Whitelisted => "whitelisted",
        }
    }
}

impl std::str::FromStr for HostList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [HostList::Restricted, HostList::Core, HostList::Whitelisted]
            .into_iter()
            .find(|l| l.key() == s)
            .ok_or_else(|| format!("host list {s:?}: restricted, core or whitelisted"))
    }
}

/// The fields of a `[[traffic_rule]]`, as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFields {
    /// `interface:NAME`, `host:IP`, ...
    pub target: String,
    /// `total` or an application.
    pub metric: String,
    /// `5min`, `hour` or `day`.
    pub frequency: String,
    /// `volume`, `throughput` or `percentage`.
    pub kind: String,
    /// `above` or `below`.
    pub bound: String,
    /// The threshold, e.g. `1MB`.
    pub value: String,
}

/// One change to a policy. As JSON (the web console's requests), externally tagged in snake
/// case: `{"acl_add": "TCP;*;*;443"}`, `{"acl_edit": {"id": 2, "rule": "..."}}`,
/// `"acl_delete_all"`, `{"host_add": {"list": "core", "cidr": "10.0.0.0/8"}}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Edit {
    /// Append an ACL rule (turns the ACL check on if it was off).
    AclAdd(String),
    /// Replace ACL rule `id` (1-based).
    AclEdit {
        /// Which rule.
        id: usize,
        /// Its new text.
        rule: String,
    },
    /// Delete ACL rule `id` (1-based).
    AclDelete(usize),
    /// Delete every ACL rule; the check stays on (so every flow violates it, as in ntopng).
    AclDeleteAll,
    /// Import ntopng rule lines: appended (skipping rules already there) or replacing.
    AclImport {
        /// One rule per line, `#` comments allowed.
        text: String,
        /// Replace the existing rules.
        replace: bool,
    },
    /// Add or update an authorized device (turns device tracking on if it was off).
    DeviceSet {
        /// Its MAC.
        mac: String,
        /// A name for alerts.
        name: Option<String>,
        /// Alert when it disappears.
        alert_on_disconnect: bool,
    },
    /// Forget an authorized device.
    DeviceRemove(String),
    /// Assign a device type to a MAC by hand.
    DeviceTypeSet {
        /// The MAC.
        mac: String,
        /// The type (`printer`, `phone`, ...).
        device_type: String,
    },
    /// Let a MAC's type be detected again.
    DeviceTypeUnset(String),
    /// Set the applications allowed for a device type (replacing the built-in preset).
    DeviceAppsSet {
        /// The type.
        device_type: String,
        /// Allowed as client.
        client: Vec<String>,
        /// Allowed as server.
        server: Vec<String>,
    },
    /// Go back to the built-in preset of a device type.
    DeviceAppsUnset(String),
    /// Add a host or network to a host-policy list.
    HostAdd {
        /// Which list.
        list: HostList,
        /// The IP or CIDR.
        cidr: String,
    },
    /// Remove a host or network from a host-policy list.
    HostRemove {
        /// Which list.
        list: HostList,
        /// The IP or CIDR.
        cidr: String,
    },
    /// Add or replace a traffic profile.
    ProfileSet {
        /// Its name.
        name: String,
        /// Its BPF filter.
        bpf: String,
    },
    /// Remove a traffic profile.
    ProfileRemove(String),
    /// Append a traffic rule.
    TrafficRuleAdd(RuleFields),
    /// Remove traffic rule `id` (1-based).
    TrafficRuleRemove(usize),
}

/// Why an edit was not applied.
#[derive(Debug)]
pub enum EditError {
    /// The edit does not fit the policy (no such rule, device, profile...).
    Invalid(String),
    /// Imported rule lines are wrong (lines of the imported text).
    Rules(Vec<Problem>),
    /// The policy file is not TOML at all.
    Toml(String),
    /// The policy the edit would produce does not validate (lines of that file).
    Policy(Report),
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |f: &mut std::fmt::Formatter<'_>, what: &str, p: &[Problem]| {
            for (i, p) in p.iter().enumerate() {
                let sep = if i == 0 { "" } else { "; " };
                write!(f, "{sep}{what} line {}: {}", p.line, p.message)?;
            }
            Ok(())
        };
        match self {
            EditError::Invalid(m) | EditError::Toml(m) => f.write_str(m),
            EditError::Rules(p) => list(f, "rules", p),
            EditError::Policy(r) => list(f, "policy", &r.errors),
        }
    }
}

impl std::error::Error for EditError {}

/// An edit that validated: the new file, its policy and its warnings.
#[derive(Debug)]
pub struct Applied {
    /// The policy file's new text.
    pub text: String,
    /// The policy it holds.
    pub policy: Policy,
    /// Warnings (the policy is applied anyway).
    pub warnings: Vec<Problem>,
}

fn invalid<T>(m: impl Into<String>) -> Result<T, EditError> {
    Err(EditError::Invalid(m.into()))
}

/// The ACL rule lines of a policy text, in order (rule `id` is the 1-based position); `None`
/// when the ACL check is off.
pub fn acl_rules(text: &str) -> Option<Vec<String>> {
    let doc: DocumentMut = text.parse().ok()?;
    let acl = doc.get("acl")?;
    let rules = acl.get("rules").and_then(Item::as_str).unwrap_or("");
    Some(rule_lines(rules).map(str::to_string).collect())
}

/// The non-blank, non-comment lines of the rules text.
fn rule_lines(rules: &str) -> impl Iterator<Item = &str> {
    rules
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Applies `edit` to a policy file's text. Nothing is returned unless the result validates.
pub fn apply(text: &str, edit: &Edit) -> Result<Applied, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Toml(e.to_string()))?;
    change(&mut doc, edit)?;
    let text = doc.to_string();
    let (policy, report) = parse(&text).map_err(EditError::Policy)?;
    Ok(Applied {
        text,
        policy,
        warnings: report.warnings,
    })
}

fn table<'a>(parent: &'a mut Table, key: &str) -> Result<&'a mut Table, EditError> {
    match parent
        .entry(key)
        .or_insert(toml_edit::table())
        .as_table_mut()
    {
        Some(t) => Ok(t),
        None => invalid(format!("{key:?} is not a table in the policy file")),
    }
}

fn tables<'a>(parent: &'a mut Table, key: &str) -> Result<&'a mut ArrayOfTables, EditError> {
    match parent
        .entry(key)
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
    {
        Some(t) => Ok(t),
        None => invalid(format!(
            "{key:?} is not a [[{key}]] list in the policy file"
        )),
    }
}

fn array<'a>(parent: &'a mut Table, key: &str) -> Result<&'a mut Array, EditError> {
    match parent
        .entry(key)
        .or_insert(value(Array::new()))
        .as_array_mut()
    {
        Some(a) => Ok(a),
        None => invalid(format!("{key:?} is not a list in the policy file")),
    }
}

/// MACs compare as MACs (case, separators), anything unparsable as text.
fn same_mac(a: &str, b: &str) -> bool {
    match (a.parse::<Mac>(), b.parse::<Mac>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.trim().eq_ignore_ascii_case(b.trim()),
    }
}

fn same_cidr(a: &str, b: &str) -> bool {
    match (a.parse::<Cidr>(), b.parse::<Cidr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

fn one_line(rule: &str) -> Result<&str, EditError> {
    let rule = rule.trim();
    if rule.is_empty() || rule.contains(['\n', '\r']) {
        return invalid("an ACL rule is one non-empty line");
    }
    Ok(rule)
}

fn set_rules(doc: &mut DocumentMut, lines: &[String]) -> Result<(), EditError> {
    let acl = table(doc, "acl")?;
    // A multi-line string, one rule per line, as DESIGN.md writes it.
    let body = if lines.is_empty() {
        String::new()
    } else {
        // toml_edit opens the multi-line string with a newline of its own.
        format!("{}\n", lines.join("\n"))
    };
    acl.insert("rules", value(body));
    Ok(())
}

fn current_rules(doc: &DocumentMut) -> Vec<String> {
    doc.get("acl")
        .and_then(|a| a.get("rules"))
        .and_then(Item::as_str)
        .map(|r| rule_lines(r).map(str::to_string).collect())
        .unwrap_or_default()
}

fn rule_index(rules: &[String], id: usize) -> Result<usize, EditError> {
    if id == 0 || id > rules.len() {
        return invalid(format!(
            "no ACL rule #{id}: the ACL has {} rule(s), numbered from 1",
            rules.len()
        ));
    }
    Ok(id - 1)
}

fn change(doc: &mut DocumentMut, edit: &Edit) -> Result<(), EditError> {
    match edit {
        Edit::AclAdd(rule) => {
            let rule = one_line(rule)?;
            let mut rules = current_rules(doc);
            if let Some(i) = rules.iter().position(|r| r == rule) {
                return invalid(format!("the ACL already has this rule (#{})", i + 1));
            }
            rules.push(rule.to_string());
            set_rules(doc, &rules)
        }
        Edit::AclEdit { id, rule } => {
            let rule = one_line(rule)?;
            let mut rules = current_rules(doc);
            let i = rule_index(&rules, *id)?;
            rules[i] = rule.to_string();
            set_rules(doc, &rules)
        }
        Edit::AclDelete(id) => {
            let mut rules = current_rules(doc);
            let i = rule_index(&rules, *id)?;
            rules.remove(i);
            set_rules(doc, &rules)
        }
        Edit::AclDeleteAll => set_rules(doc, &[]),
        Edit::AclImport { text, replace } => {
            let (parsed, bad) = acl::parse_lines(text, flowmesh_record::is_known_protocol);
            if !bad.is_empty() {
                return Err(EditError::Rules(
                    bad.into_iter()
                        .map(|(line, message)| Problem { line, message })
                        .collect(),
                ));
            }
            let mut rules = if *replace {
                Vec::new()
            } else {
                current_rules(doc)
            };
            for (_, r) in parsed {
                let text = r.to_string();
                if !rules.contains(&text) {
                    rules.push(text);
                }
            }
            set_rules(doc, &rules)
        }
        Edit::DeviceSet {
            mac,
            name,
            alert_on_disconnect,
        } => {
            let list = tables(table(doc, "devices")?, "authorized")?;
            let mut entry = Table::new();
            entry.insert("mac", value(mac.trim()));
            if let Some(n) = name {
                entry.insert("name", value(n.as_str()));
            }
            entry.insert("alert_on_disconnect", value(*alert_on_disconnect));
            let at = list.iter().position(|t| {
                t.get("mac")
                    .and_then(Item::as_str)
                    .is_some_and(|m| same_mac(m, mac))
            });
            upsert(list, at, entry);
            Ok(())
        }
        Edit::DeviceRemove(mac) => {
            let found = doc
                .get_mut("devices")
                .and_then(Item::as_table_mut)
                .and_then(|d| d.get_mut("authorized"))
                .and_then(Item::as_array_of_tables_mut)
                .and_then(|list| {
                    let i = list.iter().position(|t| {
                        t.get("mac")
                            .and_then(Item::as_str)
                            .is_some_and(|m| same_mac(m, mac))
                    })?;
                    list.remove(i);
                    Some(())
                });
            found.map_or_else(|| invalid(format!("no authorized device {mac}")), Ok)
        }
        Edit::DeviceTypeSet { mac, device_type } => {
            let types = table(doc, "device_types")?;
            remove_key(types, |k| same_mac(k, mac));
            types.insert(mac.trim(), value(device_type.trim()));
            Ok(())
        }
        Edit::DeviceTypeUnset(mac) => {
            let removed = doc
                .get_mut("device_types")
                .and_then(Item::as_table_mut)
                .is_some_and(|t| remove_key(t, |k| same_mac(k, mac)));
            if removed {
                Ok(())
            } else {
                invalid(format!("no device type set for {mac}"))
            }
        }
        Edit::DeviceAppsSet {
            device_type,
            client,
            server,
        } => {
            let apps = table(doc, "device_apps")?;
            apps.set_implicit(true);
            let key = device_type.trim().to_ascii_lowercase();
            let mut t = Table::new();
            t.insert("client", value(client.iter().collect::<Array>()));
            t.insert("server", value(server.iter().collect::<Array>()));
            apps.insert(&key, Item::Table(t));
            Ok(())
        }
        Edit::DeviceAppsUnset(device_type) => {
            let removed = doc
                .get_mut("device_apps")
                .and_then(Item::as_table_mut)
                .is_some_and(|t| remove_key(t, |k| k.eq_ignore_ascii_case(device_type.trim())));
            if removed {
                Ok(())
            } else {
                invalid(format!(
                    "device type {device_type:?} has no applications set (it uses the preset)"
                ))
            }
        }
        Edit::HostAdd { list, cidr } => {
            let a = array(table(doc, "host_policy")?, list.key())?;
            if !a
                .iter()
                .any(|v| v.as_str().is_some_and(|s| same_cidr(s, cidr)))
            {
                a.push(cidr.trim());
            }
            Ok(())
        }
        Edit::HostRemove { list, cidr } => {
            let removed = doc
                .get_mut("host_policy")
                .and_then(Item::as_table_mut)
                .and_then(|t| t.get_mut(list.key()))
                .and_then(Item::as_array_mut)
                .and_then(|a| {
                    let i = a
                        .iter()
                        .position(|v| v.as_str().is_some_and(|s| same_cidr(s, cidr)))?;
                    a.remove(i);
                    Some(())
                });
            removed.map_or_else(
                || invalid(format!("{cidr} is not in host_policy.{}", list.key())),
                Ok,
            )
        }
        Edit::ProfileSet { name, bpf } => {
            let list = tables(doc, "profile")?;
            let mut entry = Table::new();
            entry.insert("name", value(name.trim()));
            entry.insert("bpf", value(bpf.trim()));
            let at = list
                .iter()
                .position(|t| t.get("name").and_then(Item::as_str) == Some(name.trim()));
            upsert(list, at, entry);
            Ok(())
        }
        Edit::ProfileRemove(name) => {
            let removed = doc
                .get_mut("profile")
                .and_then(Item::as_array_of_tables_mut)
                .and_then(|list| {
                    let i = list
                        .iter()
                        .position(|t| t.get("name").and_then(Item::as_str) == Some(name.trim()))?;
                    list.remove(i);
                    Some(())
                });
            removed.map_or_else(|| invalid(format!("no profile named {name:?}")), Ok)
        }
        Edit::TrafficRuleAdd(r) => {
            let mut t = Table::new();
            for (k, v) in [
                ("target", &r.target),
                ("metric", &r.metric),
                ("frequency", &r.frequency),
                ("kind", &r.kind),
                ("bound", &r.bound),
                ("value", &r.value),
            ] {
                t.insert(k, value(v.trim()));
            }
            tables(doc, "traffic_rule")?.push(t);
            Ok(())
        }
        Edit::TrafficRuleRemove(id) => {
            let list = doc
                .get_mut("traffic_rule")
                .and_then(Item::as_array_of_tables_mut);
            let n = list.as_ref().map_or(0, |l| l.len());
            match list {
                Some(l) if *id >= 1 && *id <= n => {
                    l.remove(id - 1);
                    Ok(())
                }
                _ => invalid(format!(
                    "no traffic rule #{id}: there are {n}, numbered from 1"
                )),
            }
        }
    }
}

/// Replaces entry `at`, or appends.
fn upsert(list: &mut ArrayOfTables, at: Option<usize>, entry: Table) {
    match at.and_then(|i| list.get_mut(i)) {
        Some(t) => *t = entry,
        None => list.push(entry),
    }
}

/// Removes the keys matching `matches`; true if any was.
fn remove_key(t: &mut Table, matches: impl Fn(&str) -> bool) -> bool {
    let keys: Vec<String> = t
        .iter()
        .map(|(k, _)| k.to_string())
        .filter(|k| matches(k))
        .collect();
    for k in &keys {
        t.remove(k);
    }
    !keys.is_empty()
}

/// Why a policy edit was not applied to the running collector's file.
#[derive(Debug)]
pub enum PolicyEditError {
    /// The edit does not fit, or the result does not validate.
    Edit(EditError),
    /// The policy file could not be read or written.
    Io(String),
}

#[cfg(test)]
mod tests;
