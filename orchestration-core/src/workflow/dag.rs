//! The dependency graph of a workflow and its analysis: topological order, stages (Kahn levels),
//! the critical path (CPM forward and backward pass, total float) and b-level ranks.
//!
//! The graph is a pair of petgraph compressed-sparse-row graphs (successors and predecessors).
//! Every pass here is an explicit loop over one topological order: petgraph's recursive helpers
//! (`is_cyclic_directed`, `Acyclic`) overflow the stack on deep user graphs, and its linked
//! adjacency lists are an order of magnitude slower than CSR on large ones.

use std::collections::VecDeque;

use petgraph::Directed;
use petgraph::csr::Csr;

type Graph = Csr<(), (), Directed, u32>;

/// An acyclic directed graph over nodes `0..n`; an edge `u -> v` means `u` must finish before `v`
/// starts. The only way to get one is [`Dag::new`], which rejects cycles, so every `Dag` is
/// acyclic.
#[derive(Debug, Clone)]
pub struct Dag {
    successors: Graph,
    predecessors: Graph,
    order: Vec<u32>,
    level: Vec<u32>,
}

/// The nodes of one cycle, each depending on the next (edges run from the next node to the
/// previous); the first node is not repeated at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleNodes(pub Vec<u32>);

/// The result of the CPM passes over a [`Dag`] with a duration per node.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Earliest start of each node.
    pub earliest_start: Vec<f64>,
    /// Latest start of each node that does not delay the whole.
    pub latest_start: Vec<f64>,
    /// Total float: how long each node can slip without delaying the whole.
    pub total_float: Vec<f64>,
    /// Longest path from each node to a sink, its own duration included (HEFT's upward rank).
    pub b_level: Vec<f64>,
    /// The length of the longest path: the makespan with unlimited workers.
    pub makespan: f64,
    /// One longest path from a source to a sink.
    pub critical_path: Vec<u32>,
}

/// Float tolerance when comparing sums of estimates.
const EPSILON: f64 = 1e-9;

impl Dag {
    /// Builds the graph of `node_count` nodes and `edges`, or returns one cycle when there is one.
    /// Duplicate edges are merged. Runs in O(V + E) time without recursion.
    ///
    /// # Panics
    /// When an edge names a node `>= node_count`; callers map keys to indices first.
    pub fn new(node_count: usize, edges: &[(u32, u32)]) -> Result<Dag, CycleNodes> {
        let successors = csr(node_count, edges, false);
        let predecessors = csr(node_count, edges, true);
        let (order, level) = kahn(&successors, &predecessors);
        if order.len() < node_count {
            return Err(find_cycle(&predecessors, &order));
        }
        Ok(Dag {
            successors,
            predecessors,
            order,
            level,
        })
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.order.len()
    }

    /// The number of edges.
    pub fn edge_count(&self) -> usize {
        self.successors.edge_count()
    }

    /// The nodes that depend directly on `node`.
    pub fn successors(&self, node: u32) -> &[u32] {
        self.successors.neighbors_slice(node)
    }

    /// The direct dependencies of `node`.
    pub fn predecessors(&self, node: u32) -> &[u32] {
        self.predecessors.neighbors_slice(node)
    }

    /// All nodes in a topological order (Kahn's, sources first, ties by index).
    pub fn topological_order(&self) -> &[u32] {
        &self.order
    }

    /// The stage of each node: 0 for nodes without dependencies, otherwise one more than the
    /// deepest dependency. Nodes of one stage can run in parallel.
    pub fn levels(&self) -> &[u32] {
        &self.level
    }

    /// The nodes grouped by stage, each stage sorted by index.
    pub fn stages(&self) -> Vec<Vec<u32>> {
        let depth = self.level.iter().max().map_or(0, |max| *max as usize + 1);
        let mut stages = vec![Vec::new(); depth];
        for (node, level) in self.level.iter().enumerate() {
            stages[*level as usize].push(node as u32);
        }
        stages
    }

    /// Runs the CPM forward and backward passes with `durations[node]`.
    ///
    /// # Panics
    /// When `durations` does not have one entry per node.
    pub fn schedule(&self, durations: &[f64]) -> Schedule {
        let n = self.node_count();
        assert_eq!(durations.len(), n, "one duration per node");
        let mut earliest_start = vec![0.0_f64; n];
        let mut earliest_finish = vec![0.0_f64; n];
        for &v in &self.order {
            let v = v as usize;
            let start = self
                .predecessors(v as u32)
                .iter()
                .map(|&u| earliest_finish[u as usize])
                .fold(0.0, f64::max);
            earliest_start[v] = start;
            earliest_finish[v] = start + durations[v];
        }
        let makespan = earliest_finish.iter().copied().fold(0.0, f64::max);

        let mut latest_start = vec![0.0_f64; n];
        let mut b_level = vec![0.0_f64; n];
        for &v in self.order.iter().rev() {
            let v = v as usize;
            let successors = self.successors(v as u32);
            let latest_finish = successors
                .iter()
                .map(|&w| latest_start[w as usize])
                .fold(makespan, f64::min);
            latest_start[v] = latest_finish - durations[v];
            b_level[v] = durations[v]
                + successors
                    .iter()
                    .map(|&w| b_level[w as usize])
                    .fold(0.0, f64::max);
        }
        let total_float: Vec<f64> = (0..n)
            .map(|v| (latest_start[v] - earliest_start[v]).max(0.0))
            .collect();

        // Walk from the critical source with the longest b-level, always stepping to a
        // successor that starts exactly when this node finishes and has no float.
        let mut critical_path = Vec::new();
        let start = (0..n as u32)
            .filter(|&v| self.predecessors(v).is_empty())
            .filter(|&v| total_float[v as usize] <= EPSILON)
            .min_by(|&a, &b| {
                b_level[b as usize]
                    .total_cmp(&b_level[a as usize])
                    .then(a.cmp(&b))
            });
        let mut current = start;
        while let Some(v) = current {
            critical_path.push(v);
            let finish = earliest_finish[v as usize];
            current = self.successors(v).iter().copied().find(|&w| {
                total_float[w as usize] <= EPSILON
                    && (earliest_start[w as usize] - finish).abs() <= EPSILON
            });
        }

        Schedule {
            earliest_start,
            latest_start,
            total_float,
            b_level,
            makespan,
            critical_path,
        }
    }

    /// Adds the edge `from -> to` (`to` comes to depend on `from`), or returns the cycle it
    /// would close and leaves the graph as it was. The cycle starts at `to` and is given as
    /// [`Dag::new`] gives one: each node depends on the next. An edge already present changes
    /// nothing. Runs in O(V + E): a search for a path back, then a rebuild.
    ///
    /// # Panics
    /// When `from` or `to` is not a node.
    pub fn add_edge(&mut self, from: u32, to: u32) -> Result<(), CycleNodes> {
        if let Some(mut path) = self.path(to, from) {
            // `path` runs along edges from `to` to `from`; the new edge closes it. Read
            // backwards, each node depends on the next.
            path[1..].reverse();
            return Err(CycleNodes(path));
        }
        let n = self.node_count();
        let mut edges: Vec<(u32, u32)> = (0..n as u32)
            .flat_map(|u| self.successors(u).iter().map(move |&v| (u, v)))
            .collect();
        edges.push((from, to));
        *self = Dag::new(n, &edges)
            .unwrap_or_else(|_| unreachable!("no path led back from `to` to `from`"));
        Ok(())
    }

    /// A path `from -> ... -> to` along edges, if there is one (breadth-first, so the shortest).
    pub fn path(&self, from: u32, to: u32) -> Option<Vec<u32>> {
        path_between(&self.successors, from, to)
    }
}

/// Breadth-first search for a path in `graph`; iterative, O(V + E).
fn path_between(graph: &Graph, from: u32, to: u32) -> Option<Vec<u32>> {
    let n = graph.node_count();
    let mut parent = vec![u32::MAX; n];
    parent[from as usize] = from;
    let mut queue = VecDeque::from([from]);
    while let Some(u) = queue.pop_front() {
        if u == to {
            let mut path = vec![to];
            let mut at = to;
            while at != from {
                at = parent[at as usize];
                path.push(at);
            }
            path.reverse();
            return Some(path);
        }
        for &w in graph.neighbors_slice(u) {
            if parent[w as usize] == u32::MAX {
                parent[w as usize] = u;
                queue.push_back(w);
            }
        }
    }
    None
}

/// A CSR graph of `n` nodes from unsorted edges, by counting sort on the source: O(V + E) plus
/// sorting each node's (usually short) neighbour list.
fn csr(n: usize, edges: &[(u32, u32)], reverse: bool) -> Graph {
    let mut count = vec![0u32; n + 1];
    for &(u, v) in edges {
        let source = if reverse { v } else { u };
        count[source as usize + 1] += 1;
    }
    for i in 0..n {
        count[i + 1] += count[i];
    }
    let mut next = count.clone();
    let mut targets = vec![0u32; edges.len()];
    for &(u, v) in edges {
        let (source, target) = if reverse { (v, u) } else { (u, v) };
        let slot = &mut next[source as usize];
        targets[*slot as usize] = target;
        *slot += 1;
    }
    let mut sorted = Vec::with_capacity(edges.len());
    for source in 0..n {
        let row = &mut targets[count[source] as usize..count[source + 1] as usize];
        row.sort_unstable();
        let mut previous = None;
        for &target in row.iter() {
            if previous != Some(target) {
                sorted.push((source as u32, target));
                previous = Some(target);
            }
        }
    }
    let mut graph = Graph::from_sorted_edges(&sorted)
        .unwrap_or_else(|_| unreachable!("edges were sorted and deduplicated above"));
    // `from_sorted_edges` sizes the graph by the largest node that has an edge.
    while graph.node_count() < n {
        graph.add_node(());
    }
    graph
}

/// Kahn's algorithm: a topological order (possibly partial, when there is a cycle) and the level
/// of each node reached.
fn kahn(successors: &Graph, predecessors: &Graph) -> (Vec<u32>, Vec<u32>) {
    let n = successors.node_count();
    let mut indegree: Vec<u32> = (0..n as u32)
        .map(|v| predecessors.neighbors_slice(v).len() as u32)
        .collect();
    let mut level = vec![0u32; n];
    let mut order = Vec::with_capacity(n);
    order.extend((0..n as u32).filter(|&v| indegree[v as usize] == 0));
    let mut head = 0;
    while head < order.len() {
        let u = order[head];
        head += 1;
        for &w in successors.neighbors_slice(u) {
            let next = level[u as usize] + 1;
            let w_level = &mut level[w as usize];
            *w_level = (*w_level).max(next);
            let degree = &mut indegree[w as usize];
            *degree -= 1;
            if *degree == 0 {
                order.push(w);
            }
        }
    }
    (order, level)
}

/// Finds one cycle among the nodes Kahn's algorithm could not order. Each of them has a
/// predecessor that is also unordered, so walking predecessors must revisit a node; the loop
/// from that node is a cycle.
fn find_cycle(predecessors: &Graph, order: &[u32]) -> CycleNodes {
    let n = predecessors.node_count();
    let mut ordered = vec![false; n];
    for &v in order {
        ordered[v as usize] = true;
    }
    let start = (0..n as u32).find(|&v| !ordered[v as usize]).unwrap_or(0);
    let mut seen_at = vec![usize::MAX; n];
    let mut walk = Vec::new();
    let mut at = start;
    while seen_at[at as usize] == usize::MAX {
        seen_at[at as usize] = walk.len();
        walk.push(at);
        at = predecessors
            .neighbors_slice(at)
            .iter()
            .copied()
            .find(|&p| !ordered[p as usize])
            .unwrap_or(at);
    }
    // `walk` follows edges backwards, which is the order of "depends on".
    let mut cycle = walk[seen_at[at as usize]..].to_vec();
    // Start the cycle at its smallest node so the same cycle is always named the same way.
    if let Some(min_pos) = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, v)| **v)
        .map(|(i, _)| i)
    {
        cycle.rotate_left(min_pos);
    }
    CycleNodes(cycle)
}
