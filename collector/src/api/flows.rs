//! Stored-flow searches as the API serves them: the gRPC call `SearchFlows` (the CLI's
//! `flows-search`) and the console's `flows` request take the same parameters, checked here.

use flowmesh_proto::v1 as pb;
use flowmesh_record::codec;
use serde::Deserialize;

use crate::store::flows::{FlowQuery, StoredFlow, TopEntry, TopKind};
use crate::store::{Store, StoreError};

/// The most flows one answer carries (ask again with `to_us` for older ones).
pub const MAX_FLOWS: usize = 10_000;

/// A search's parameters as a request names them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Only this instance.
    pub instance: Option<String>,
    /// Active at or after (µs).
    pub from_us: Option<i64>,
    /// Active before (µs).
    pub to_us: Option<i64>,
    /// IP or CIDR, either end.
    pub host: Option<String>,
    /// Port, either end.
    pub port: Option<u32>,
    /// Master protocol.
    pub l7: Option<String>,
    /// Application.
    pub app: Option<String>,
    /// Traffic profile.
    pub profile: Option<String>,
    /// Server name or a parent domain.
    pub server_name: Option<String>,
    /// Newest N flows, or top N keys (0: the cap).
    #[serde(default)]
    pub limit: usize,
    /// `hosts`, `apps`, `l7`, `profiles` or `talkers`: aggregates instead of flows.
    pub top: Option<String>,
    /// Top by flows instead of bytes.
    #[serde(default)]
    pub by_flows: bool,
}

impl From<pb::SearchFlowsRequest> for SearchParams {
    fn from(r: pb::SearchFlowsRequest) -> Self {
        SearchParams {
            instance: r.instance,
            from_us: r.from_us,
            to_us: r.to_us,
            host: r.host,
            port: r.port,
            l7: r.l7,
            app: r.app,
            profile: r.profile,
            server_name: r.server_name,
            limit: r.limit as usize,
            top: r.top,
            by_flows: r.by_flows,
        }
    }
}

impl From<SearchParams> for pb::SearchFlowsRequest {
    fn from(p: SearchParams) -> Self {
        pb::SearchFlowsRequest {
            instance: p.instance,
            from_us: p.from_us,
            to_us: p.to_us,
            host: p.host,
            port: p.port,
            l7: p.l7,
            app: p.app,
            profile: p.profile,
            server_name: p.server_name,
            limit: u32::try_from(p.limit).unwrap_or(u32::MAX),
            top: p.top,
            by_flows: p.by_flows,
        }
    }
}

/// What a search found.
#[derive(Debug)]
pub enum Found {
    /// Flows, newest first, and whether the cap cut them.
    Flows(Vec<StoredFlow>, bool),
    /// Aggregates, largest first.
    Top(Vec<TopEntry>),
}

impl SearchParams {
    /// Runs the search on `store`, at most `cap` flows; `Err(Ok(why))` for a bad parameter.
    pub fn run(self, store: &Store, cap: usize) -> Result<Found, Result<String, StoreError>> {
        let bad = |m: String| Err(Ok(m));
        let host = match self.host.as_deref().map(str::parse) {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => return bad(e),
        };
        let port = match self.port.map(u16::try_from) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => return bad("port: 0-65535".into()),
        };
        let limit = if self.limit == 0 {
            cap
        } else {
            self.limit.min(cap)
        };
        let mut q = FlowQuery {
            instance: self.instance,
            from_us: self.from_us,
            to_us: self.to_us,
            host,
            port,
            l7: self.l7,
            app: self.app,
            profile: self.profile,
            server_name: self.server_name,
            limit,
        };
        if let Some(t) = &self.top {
            let Some(kind) = TopKind::parse(t) else {
                return bad(format!(
                    "top: {t:?} is not hosts, apps, l7, profiles or talkers"
                ));
            };
            let top_n = if self.limit == 0 { 10 } else { self.limit };
            q.limit = 0;
            return store
                .top_flows(&q, kind, self.by_flows, top_n)
                .map(Found::Top)
                .map_err(Err);
        }
        // One more than asked tells whether the cap cut the answer.
        let asked = q.limit;
        q.limit = asked.saturating_add(1);
        let mut flows = store.search_flows(&q).map_err(Err)?;
        let cut = flows.len() > asked;
        flows.truncate(asked);
        Ok(Found::Flows(flows, cut && asked == cap))
    }
}

/// The gRPC answer.
pub fn to_proto(found: Found) -> pb::SearchFlowsResponse {
    match found {
        Found::Flows(flows, truncated) => pb::SearchFlowsResponse {
            flows: flows
                .into_iter()
                .map(|f| pb::StoredFlow {
                    flow: Some(codec::to_proto(&f.record, false)),
                    instance: f.instance,
                    profiles: f.profiles,
                })
                .collect(),
            top: Vec::new(),
            truncated,
        },
        Found::Top(top) => pb::SearchFlowsResponse {
            top: top
                .into_iter()
                .map(|t| pb::TopEntry {
                    key: t.key,
                    flows: t.flows,
                    bytes: t.bytes,
                    packets: t.packets,
                })
                .collect(),
            ..Default::default()
        },
    }
}

/// What the gRPC answer holds (`top`: the search asked for a top-N), and how many of its flows
/// could not be read (a field this build does not accept).
pub fn from_proto(r: pb::SearchFlowsResponse, top: bool) -> (Found, usize) {
    if top {
        let top = r
            .top
            .into_iter()
            .map(|t| TopEntry {
                key: t.key,
                flows: t.flows,
                bytes: t.bytes,
                packets: t.packets,
            })
            .collect();
        return (Found::Top(top), 0);
    }
    let total = r.flows.len();
    let flows: Vec<StoredFlow> = r
        .flows
        .into_iter()
        .filter_map(|f| {
            let record = codec::from_proto(f.flow?).ok()?;
            Some(StoredFlow {
                instance: f.instance,
                record,
                profiles: f.profiles,
            })
        })
        .collect();
    let unread = total - flows.len();
    (Found::Flows(flows, r.truncated), unread)
}
