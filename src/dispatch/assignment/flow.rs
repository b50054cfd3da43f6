//! The exact batch solver: min-cost max-flow by successive shortest paths over the candidate
//! graph (what [`super::solve`] runs).
//!
//! The network: source → order (capacity 1, cost 0) → driver (capacity 1 per candidate, the
//! candidate's cost) → sink (capacity the driver's free slots, cost 0). Each round finds the
//! shortest source–sink path in the residual network by Dijkstra over reduced costs (Johnson
//! potentials, so the negative costs of reverse edges never show) and sends one more order along
//! it; the solver stops when the sink is out of reach. Each flow along the way is the cheapest of
//! its size, so the last one serves the most orders, and among those answers costs the least.
//!
//! Two things keep a round local. Dijkstra stops at the sink: nodes it did not settle are priced
//! as if settled at the sink's distance, which keeps every reduced cost non-negative. And the
//! source side is never rescanned: every unsent order shares the source's potential, so each
//! driver's cheapest edge from an unsent order waits in a heap kept across rounds (the
//! [`Frontier`]), and a round takes from it only the drivers nearer than the sink.
//!
//! Ties go to the smaller node (the sink first, then orders in input order, then drivers in the
//! order the lists first name them), so the same input gives the same answer.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// "No edge", "not in the heap".
const NONE: u32 = u32::MAX;
/// The sink's node number. Order `i` is node `1 + i`, listed driver `d` is node `1 + orders + d`.
const SINK: usize = 0;

/// What [`assign`] found.
pub(super) enum Outcome {
    /// Per order, its candidate as (driver index, cost), or `None`: unserved.
    Assigned(Vec<Option<(usize, i64)>>),
    /// The deadline passed before the last augmentation.
    Late,
    /// Costs (or a batch) so large that a sum along a path might overflow the solver's integers.
    TooLarge,
}

/// The min-cost max-flow over `lists` (order `i`'s candidates as (index into `free`, cost)), with
/// `free[j]` slots at driver `j`. Candidates naming no driver, or one without a free slot, are
/// left out. The clock is read once per augmentation.
pub(super) fn assign(
    free: &[u32],
    lists: &[Vec<(usize, i64)>],
    deadline: Option<Instant>,
) -> Outcome {
    let Some(net) = Network::new(free, lists) else {
        return Outcome::TooLarge;
    };
    let mut flow = Flow::new(&net);
    loop {
        if deadline.is_some_and(|at| Instant::now() >= at) {
            return Outcome::Late;
        }
        let Some(length) = flow.shortest_path() else {
            break;
        };
        flow.reprice(length);
        flow.augment();
    }
    Outcome::Assigned(flow.chosen())
}

/// The candidate graph, fixed for one solve: edges grouped by order, and per driver its incoming
/// edges cheapest first.
struct Network {
    orders: usize,
    /// Order `i`'s edges are `first[i]..first[i + 1]`.
    first: Vec<u32>,
    /// Per edge: the listed driver it reaches, its cost and its order.
    to: Vec<u32>,
    cost: Vec<i64>,
    from: Vec<u32>,
    /// Per listed driver: its index in the caller's slice and its free slots.
    driver: Vec<usize>,
    cap: Vec<u32>,
    /// Driver `d`'s incoming edges, cheapest first (ties: the smaller edge, so the earlier
    /// order), are `incoming[into[d]..into[d + 1]]`.
    into: Vec<u32>,
    incoming: Vec<u32>,
    /// The drivers' and the sink's starting potential: the least cost, or 0 if that is larger.
    floor: i64,
}

impl Network {
    /// `None` when the numbers could overflow. A path alternates orders and drivers, so every
    /// potential, reduced cost and distance stays within a few times (2 × orders + 3) × the
    /// largest absolute cost: 32 × (orders + 2) × that cost must fit in `i64`.
    fn new(free: &[u32], lists: &[Vec<(usize, i64)>]) -> Option<Network> {
        let edges: usize = lists.iter().map(Vec::len).sum();
        if edges.checked_add(lists.len())? >= (NONE / 4) as usize {
            return None;
        }
        let mut net = Network {
            orders: lists.len(),
            first: Vec::with_capacity(lists.len() + 1),
            to: Vec::with_capacity(edges),
            cost: Vec::with_capacity(edges),
            from: Vec::with_capacity(edges),
            driver: Vec::new(),
            cap: Vec::new(),
            into: Vec::new(),
            incoming: Vec::new(),
            floor: 0,
        };
        let mut listed = vec![NONE; free.len()];
        net.first.push(0);
        for (i, list) in lists.iter().enumerate() {
            for &(j, cost) in list {
                let Some(&slots) = free.get(j).filter(|slots| **slots > 0) else {
                    continue;
                };
                if listed[j] == NONE {
                    listed[j] = net.driver.len() as u32;
                    net.driver.push(j);
                    net.cap.push(slots);
                }
                net.to.push(listed[j]);
                net.cost.push(cost);
                net.from.push(i as u32);
            }
            net.first.push(net.to.len() as u32);
        }
        let widest = net.cost.iter().map(|c| c.unsigned_abs()).max().unwrap_or(0);
        i64::try_from(widest.max(1))
            .ok()?
            .checked_mul(32)?
            .checked_mul(i64::try_from(lists.len()).ok()? + 2)?;
        net.floor = net.cost.iter().copied().min().unwrap_or(0).min(0);
        net.sort_incoming();
        Some(net)
    }

    /// `into` and `incoming`: the edges counted by driver, then each driver's sorted by cost.
    fn sort_incoming(&mut self) {
        let drivers = self.driver.len();
        self.into = vec![0; drivers + 1];
        for &d in &self.to {
            self.into[d as usize + 1] += 1;
        }
        for d in 0..drivers {
            self.into[d + 1] += self.into[d];
        }
        let mut fill = self.into.clone();
        self.incoming = vec![0; self.to.len()];
        for (e, &d) in self.to.iter().enumerate() {
            self.incoming[fill[d as usize] as usize] = e as u32;
            fill[d as usize] += 1;
        }
        for d in 0..drivers {
            let span = self.into[d] as usize..self.into[d + 1] as usize;
            let cost = &self.cost;
            self.incoming[span].sort_unstable_by_key(|&e| (cost[e as usize], e));
        }
    }

    fn edges_of(&self, order: usize) -> std::ops::Range<usize> {
        self.first[order] as usize..self.first[order + 1] as usize
    }

    fn order_node(&self, order: usize) -> usize {
        1 + order
    }

    fn driver_node(&self, driver: usize) -> usize {
        1 + self.orders + driver
    }
}

/// The flow, the potentials, and one round's Dijkstra.
struct Flow<'a> {
    net: &'a Network,
    /// Per order: the edge it is sent along, or [`NONE`].
    mate: Vec<u32>,
    /// Per listed driver: the orders sent to it.
    held: Vec<Vec<u32>>,
    /// Per listed driver: where in its `incoming` its cheapest edge from an unsent order is.
    next: Vec<u32>,
    /// Potential per node. The source's is `source`, which every unsent order shares.
    pot: Vec<i64>,
    source: i64,
    /// Drivers by their distance straight from the source, less `source`.
    frontier: Frontier,
    round: u32,
    /// This round's tentative distance per node, valid where `seen` is this round; settled
    /// where `done` is. `via` is the edge that reached a driver, or the driver that reached
    /// the sink (an order is reached only from the driver it is sent to).
    dist: Vec<i64>,
    seen: Vec<u32>,
    done: Vec<u32>,
    via: Vec<u32>,
    settled: Vec<u32>,
    queue: BinaryHeap<Reverse<(i64, u32)>>,
}

impl<'a> Flow<'a> {
    /// No order sent. Drivers and the sink start at `floor`, so every reduced cost is `cost −
    /// floor` ≥ 0 on an order's edges and 0 on a driver's edge to the sink.
    fn new(net: &'a Network) -> Flow<'a> {
        let drivers = net.driver.len();
        let nodes = 1 + net.orders + drivers;
        let mut flow = Flow {
            net,
            mate: vec![NONE; net.orders],
            held: vec![Vec::new(); drivers],
            next: net.into[..drivers].to_vec(),
            pot: vec![net.floor; nodes],
            source: 0,
            frontier: Frontier::new(drivers),
            round: 0,
            dist: vec![0; nodes],
            seen: vec![0; nodes],
            done: vec![0; nodes],
            via: vec![NONE; nodes],
            settled: Vec::new(),
            queue: BinaryHeap::new(),
        };
        for d in 0..drivers {
            flow.refresh(d);
        }
        flow
    }

    /// Dijkstra from the source until the sink is settled: its reduced distance, or `None` when
    /// no path is left.
    fn shortest_path(&mut self) -> Option<i64> {
        self.round += 1;
        self.queue.clear();
        self.settled.clear();
        loop {
            let (dist, node) = self.nearest()?;
            self.done[node] = self.round;
            self.settled.push(node as u32);
            if node == SINK {
                return Some(dist);
            } else if node <= self.net.orders {
                self.scan_order(node - 1, dist);
            } else {
                self.scan_driver(node - 1 - self.net.orders, dist);
            }
        }
    }

    /// The nearest node not settled this round, with its distance: off the queue, or a driver
    /// straight from the source off the frontier (which is refreshed after the round).
    fn nearest(&mut self) -> Option<(i64, usize)> {
        loop {
            let queued = self.queue.peek().map(|Reverse(top)| *top);
            let direct = self.frontier.peek().map(|(key, d)| {
                let node = self.net.driver_node(d) as u32;
                (self.source + key, node)
            });
            match (queued, direct) {
                (_, Some(direct)) if queued.is_none_or(|queued| direct < queued) => {
                    let (dist, node) = (direct.0, direct.1 as usize);
                    let d = node - 1 - self.net.orders;
                    self.frontier.set(d, None);
                    if self.done[node] != self.round {
                        self.seen[node] = self.round;
                        self.dist[node] = dist;
                        self.via[node] = self.net.incoming[self.next[d] as usize];
                        return Some((dist, node));
                    }
                }
                _ => {
                    let Reverse((dist, node)) = self.queue.pop()?;
                    let node = node as usize;
                    if self.done[node] != self.round && dist <= self.dist[node] {
                        return Some((dist, node));
                    }
                }
            }
        }
    }

    /// From a sent order: its other candidates.
    fn scan_order(&mut self, order: usize, dist: i64) {
        let from = self.pot[self.net.order_node(order)];
        for e in self.net.edges_of(order) {
            if e as u32 != self.mate[order] {
                let node = self.net.driver_node(self.net.to[e] as usize);
                let reduced = self.net.cost[e] + from - self.pot[node];
                debug_assert!(reduced >= 0, "negative reduced cost on edge {e}");
                self.relax(node, dist + reduced, e as u32);
            }
        }
    }

    /// From a driver: the sink while it has a slot left, and back along each order sent to it.
    fn scan_driver(&mut self, driver: usize, dist: i64) {
        let from = self.pot[self.net.driver_node(driver)];
        if (self.held[driver].len() as u32) < self.net.cap[driver] {
            debug_assert!(from >= self.pot[SINK], "negative reduced cost to the sink");
            self.relax(SINK, dist + from - self.pot[SINK], driver as u32);
        }
        for h in 0..self.held[driver].len() {
            let order = self.held[driver][h] as usize;
            let node = self.net.order_node(order);
            let reduced = from - self.net.cost[self.mate[order] as usize] - self.pot[node];
            debug_assert!(reduced >= 0, "negative reduced cost back to order {order}");
            self.relax(node, dist + reduced, NONE);
        }
    }

    fn relax(&mut self, node: usize, dist: i64, via: u32) {
        if self.done[node] == self.round {
            return;
        }
        if self.seen[node] != self.round || dist < self.dist[node] {
            self.seen[node] = self.round;
            self.dist[node] = dist;
            self.via[node] = via;
            self.queue.push(Reverse((dist, node as u32)));
        }
    }

    /// Johnson's update, relative to the nodes left unsettled (which move as if settled at the
    /// sink's distance, so they keep their potential): a settled node moves by its distance less
    /// the sink's, and so does the source, settled at 0. Every reduced cost stays ≥ 0, and the
    /// path found costs 0.
    fn reprice(&mut self, sink: i64) {
        for &node in &self.settled {
            let node = node as usize;
            self.pot[node] += self.dist[node] - sink;
        }
        self.source -= sink;
    }

    /// Sends one more order along the path found: back from the sink, each driver on it takes
    /// the order that reached it, until an unsent order is reached. Then the frontier keys of the
    /// drivers whose potential or cheapest unsent order changed.
    fn augment(&mut self) {
        let mut driver = self.via[SINK] as usize;
        loop {
            let e = self.via[self.net.driver_node(driver)] as usize;
            let order = self.net.from[e] as usize;
            let before = std::mem::replace(&mut self.mate[order], e as u32);
            self.held[driver].push(order as u32);
            if before == NONE {
                self.pot[self.net.order_node(order)] = self.source;
                self.sent(order);
                break;
            }
            driver = self.net.to[before as usize] as usize;
            self.held[driver].retain(|held| *held as usize != order);
        }
        for s in 0..self.settled.len() {
            let node = self.settled[s] as usize;
            if node > self.net.orders {
                self.refresh(node - 1 - self.net.orders);
            }
        }
    }

    /// A newly sent order leaves the source side: its drivers look past it for their cheapest
    /// unsent order.
    fn sent(&mut self, order: usize) {
        for e in self.net.edges_of(order) {
            let d = self.net.to[e] as usize;
            let end = self.net.into[d + 1];
            while self.next[d] < end {
                let edge = self.net.incoming[self.next[d] as usize] as usize;
                if self.mate[self.net.from[edge] as usize] == NONE {
                    break;
                }
                self.next[d] += 1;
            }
            self.refresh(d);
        }
    }

    /// Driver `d`'s frontier key from its cheapest unsent order: that edge's cost less the
    /// driver's potential (its reduced cost, less the source's potential). Out when none is left.
    fn refresh(&mut self, d: usize) {
        let key = (self.next[d] < self.net.into[d + 1]).then(|| {
            let edge = self.net.incoming[self.next[d] as usize] as usize;
            self.net.cost[edge] - self.pot[self.net.driver_node(d)]
        });
        self.frontier.set(d, key);
    }

    /// Per order, its candidate as (driver index, cost), or `None`.
    fn chosen(&self) -> Vec<Option<(usize, i64)>> {
        self.mate
            .iter()
            .map(|&e| {
                (e != NONE).then(|| {
                    let e = e as usize;
                    (self.net.driver[self.net.to[e] as usize], self.net.cost[e])
                })
            })
            .collect()
    }
}

/// A binary min-heap of drivers by key (ties: the smaller driver), each at most once, whose keys
/// change in place.
struct Frontier {
    heap: Vec<u32>,
    key: Vec<i64>,
    /// Per driver: its position in `heap`, or [`NONE`].
    at: Vec<u32>,
}

impl Frontier {
    fn new(drivers: usize) -> Frontier {
        Frontier {
            heap: Vec::with_capacity(drivers),
            key: vec![0; drivers],
            at: vec![NONE; drivers],
        }
    }

    /// The smallest key and its driver.
    fn peek(&self) -> Option<(i64, usize)> {
        self.heap
            .first()
            .map(|&d| (self.key[d as usize], d as usize))
    }

    /// Puts `d` in with `key`, moves it to `key`, or (`None`) takes it out.
    fn set(&mut self, d: usize, key: Option<i64>) {
        let at = self.at[d];
        match key {
            Some(key) => {
                self.key[d] = key;
                if at == NONE {
                    self.at[d] = self.heap.len() as u32;
                    self.heap.push(d as u32);
                    self.up(self.heap.len() - 1);
                } else {
                    self.fix(at as usize);
                }
            }
            None if at != NONE => {
                let last = self.heap.len() - 1;
                self.swap(at as usize, last);
                self.heap.pop();
                self.at[d] = NONE;
                if (at as usize) < last {
                    self.fix(at as usize);
                }
            }
            None => {}
        }
    }

    fn before(&self, a: u32, b: u32) -> bool {
        (self.key[a as usize], a) < (self.key[b as usize], b)
    }

    fn fix(&mut self, at: usize) {
        let d = self.heap[at];
        self.up(at);
        self.down(self.at[d as usize] as usize);
    }

    fn up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if !self.before(self.heap[at], self.heap[parent]) {
                break;
            }
            self.swap(at, parent);
            at = parent;
        }
    }

    fn down(&mut self, mut at: usize) {
        loop {
            let left = 2 * at + 1;
            if left >= self.heap.len() {
                break;
            }
            let right = left + 1;
            let child = if right < self.heap.len() && self.before(self.heap[right], self.heap[left])
            {
                right
            } else {
                left
            };
            if !self.before(self.heap[child], self.heap[at]) {
                break;
            }
            self.swap(at, child);
            at = child;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.at[self.heap[a] as usize] = a as u32;
        self.at[self.heap[b] as usize] = b as u32;
    }
}
