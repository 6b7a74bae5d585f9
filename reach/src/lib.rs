//! Static syscall reachability of an x86_64 ELF file inside a root file
//! system: which `(Abi, nr)` the file can reach, each with the chain that
//! reaches it, and the limits of the analysis in numbers.
//!
//! The loader is followed as glibc's `ld.so` would inside the root
//! ([`root`]); each file is summarised once per [`Analyzer`] (cached by
//! sha256, [`elf`]); the process's call graph is then walked from the
//! executable's entry and init arrays, each library's constructors, and
//! the interpreter's entry, through imports bound in the global scope.
//!
//! Never guess silently: what is not resolved (a syscall number that is
//! not constant, an indirect call, an import no object defines, a missing
//! library, an IFUNC whose candidates are unknown) is counted in
//! [`Limits`] and listed.

pub mod cache;
pub mod elf;
pub mod root;
pub mod unpack;

use elf::{ArgSite, EdgeKind, ExportKind, Object, RootKind, Target, Val};
use schemas::Abi;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    #[error("{path} not found inside the root {root}")]
    NotFound { path: String, root: PathBuf },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid ELF file ({what})")]
    Elf { path: String, what: String },
    #[error("{path} is not an x86_64 ELF file")]
    NotX86_64 { path: String },
    #[error("cannot use {dir} as the analysis cache: {why}")]
    Cache { dir: PathBuf, why: String },
}

/// The limits of one analysis, in numbers. Each is a place where the
/// reachable set may be incomplete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// `syscall`/`int 0x80` sites in reached code whose number is not a
    /// constant, and calls of a `syscall()`-like wrapper whose number
    /// argument is not one. Any makes the reachable set unknown.
    pub nonconst_syscall_sites: u32,
    /// `call` through a register or memory that is not a GOT slot.
    pub indirect_calls: u32,
    /// `jmp` through a register or memory that is not a GOT slot (jump
    /// tables inside a function are covered anyway: a reached function is
    /// analysed whole).
    pub indirect_jumps: u32,
    /// Imports of reached code that no loaded object defines (strong).
    pub unresolved_imports: u32,
    /// The same for weak imports (normal: `__gmon_start__`, `_ITM_*`).
    pub unresolved_weak_imports: u32,
    /// IFUNCs whose resolver showed no candidate.
    pub unresolved_ifuncs: u32,
    /// DT_NEEDED entries not found in the root.
    pub missing_libraries: u32,
    /// Bytes in executable sections that did not decode.
    pub undecodable_instructions: u32,
}

impl Limits {
    fn add(&mut self, o: &Limits) {
        self.nonconst_syscall_sites += o.nonconst_syscall_sites;
        self.indirect_calls += o.indirect_calls;
        self.indirect_jumps += o.indirect_jumps;
        self.unresolved_imports += o.unresolved_imports;
        self.unresolved_weak_imports += o.unresolved_weak_imports;
        self.unresolved_ifuncs += o.unresolved_ifuncs;
        self.missing_libraries += o.missing_libraries;
        self.undecodable_instructions += o.undecodable_instructions;
    }
}

/// One step of a provenance chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hop {
    /// Where the walk started: an object's entry, init or fini function.
    Root {
        object: String,
        kind: &'static str,
        function: String,
    },
    /// A direct call, jump or address taken inside an object.
    Call { object: String, function: String },
    /// An import, bound to the function of the object that defines it.
    Import {
        symbol: String,
        object: String,
        function: String,
    },
    /// The site: the function holding the `syscall` instruction, or the
    /// call of a `syscall()`-like wrapper with a constant number.
    Site {
        object: String,
        function: String,
        addr: u64,
        via_wrapper: Option<String>,
    },
}

/// A reachable syscall and one chain that reaches it (the shortest the
/// walk found).
#[derive(Clone, Debug)]
pub struct Reached {
    pub chain: Vec<Hop>,
}

impl Reached {
    /// The chain in one line: the root object, then each import with the
    /// library and function it binds to, then the function with the site
    /// (calls inside one object are left out; [`Reached::chain`] has
    /// them).
    pub fn render(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut last_fn: Option<(String, String)> = None;
        for h in &self.chain {
            match h {
                Hop::Root {
                    object,
                    kind,
                    function,
                } => {
                    if parts.is_empty() {
                        parts.push(object.clone());
                    }
                    if *kind != "entry" {
                        parts.push(format!("{}:{function} ({kind})", base(object)));
                    }
                    last_fn = Some((object.clone(), function.clone()));
                }
                Hop::Import {
                    symbol,
                    object,
                    function,
                } => {
                    parts.push(symbol.clone());
                    parts.push(format!("{}:{function}", base(object)));
                    last_fn = Some((object.clone(), function.clone()));
                }
                Hop::Call { .. } => {}
                Hop::Site {
                    object,
                    function,
                    via_wrapper,
                    ..
                } => {
                    if last_fn.as_ref() != Some(&(object.clone(), function.clone())) {
                        parts.push(format!("{}:{function}", base(object)));
                    }
                    if let Some(w) = via_wrapper {
                        parts.push(w.clone());
                    }
                }
            }
        }
        parts.join(" -> ")
    }
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// One file the analysis loaded.
#[derive(Clone, Debug)]
pub struct ObjectReport {
    /// In-root path.
    pub path: String,
    pub sha256: String,
    /// Why it was loaded: "executable", "interpreter", or "needed by X".
    pub role: String,
    pub functions: usize,
    pub reached_functions: usize,
    pub limits: Limits,
}

/// The answer for one file.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The file, as a path inside the root.
    pub file: String,
    pub root: PathBuf,
    /// Every reachable syscall, with one chain.
    pub syscalls: BTreeMap<(Abi, u32), Reached>,
    pub objects: Vec<ObjectReport>,
    /// Totals over the objects.
    pub limits: Limits,
    /// `needed (by object)` for each library not found.
    pub missing_libraries: Vec<String>,
    /// `symbol@version (by object)` for each strong import left unresolved.
    pub unresolved_imports: Vec<String>,
    /// Sites with a non-constant number: `object:function+0xoff`.
    pub nonconst_sites: Vec<String>,
    /// Whether the root's `ld.so.cache` was read.
    pub ld_so_cache: bool,
    /// For each reachable syscall of [`elf::ARG_SYSCALLS`]: the first three
    /// arguments at each reached site (or at each reached call of an
    /// argument wrapper), their low 32 bits, `None` where not a constant.
    /// At most [`ARG_SITES_CAP`] tuples per syscall: a larger set keeps
    /// `[None, None, None]` (any value) and the smallest others, and its
    /// syscall is listed in [`Analysis::arg_sites_over_cap`].
    pub arg_sites: BTreeMap<(Abi, u32), BTreeSet<ArgTuple>>,
    pub arg_sites_over_cap: Vec<(Abi, u32)>,
}

/// A site's first three arguments (low 32 bits; `None`: not a constant).
pub type ArgTuple = [Option<u32>; 3];

/// The most argument tuples kept per syscall.
pub const ARG_SITES_CAP: usize = 256;

impl Analysis {
    /// Whether the reachable set is known: no syscall site with a number
    /// that is not constant was reached. (Indirect calls not followed and
    /// unresolved imports are limits too, reported beside it.)
    pub fn reach_known(&self) -> bool {
        self.limits.nonconst_syscall_sites == 0
    }
}

/// Analyses files inside one root, each distinct file (by sha256) once.
pub struct Analyzer {
    root: root::Root,
    by_hash: HashMap<[u8; 32], Arc<Object>>,
    by_path: HashMap<PathBuf, ([u8; 32], Arc<Object>)>,
    disk: Option<cache::DiskCache>,
}

struct Loaded {
    path: String,
    hash: [u8; 32],
    obj: Arc<Object>,
    role: String,
}

impl Analyzer {
    pub fn new(root: &Path) -> Analyzer {
        Analyzer {
            root: root::Root::new(root),
            by_hash: HashMap::new(),
            by_path: HashMap::new(),
            disk: None,
        }
    }

    /// Also keep every file's summary in `disk`, and read it from there
    /// first: a file already analysed on this host (by this build) is not
    /// disassembled again.
    pub fn with_disk_cache(mut self, disk: cache::DiskCache) -> Analyzer {
        self.disk = Some(disk);
        self
    }

    /// The disk cache, if any (its hit and miss counts).
    pub fn disk_cache(&self) -> Option<&cache::DiskCache> {
        self.disk.as_ref()
    }

    /// Files analysed so far (distinct contents).
    pub fn cached_objects(&self) -> usize {
        self.by_hash.len()
    }

    fn load(&mut self, f: &root::Found) -> Result<([u8; 32], Arc<Object>), ReachError> {
        if let Some(x) = self.by_path.get(&f.host) {
            return Ok(x.clone());
        }
        let data = std::fs::read(&f.host).map_err(|source| ReachError::Read {
            path: f.host.clone(),
            source,
        })?;
        let hash: [u8; 32] = Sha256::digest(&data).into();
        let obj = match self.by_hash.get(&hash) {
            Some(o) => o.clone(),
            None => {
                let cached = self.disk.as_mut().and_then(|d| d.get(&hash));
                let o = match cached {
                    Some(o) => Arc::new(o),
                    None => {
                        let o = Arc::new(elf::analyse(&f.path, &data)?);
                        if let Some(d) = &self.disk {
                            d.put(&hash, &o);
                        }
                        o
                    }
                };
                self.by_hash.insert(hash, o.clone());
                o
            }
        };
        self.by_path.insert(f.host.clone(), (hash, obj.clone()));
        Ok((hash, obj))
    }

    /// Analyse `file`, a path inside the root.
    pub fn analyse(&mut self, file: &str) -> Result<Analysis, ReachError> {
        let found = self
            .root
            .resolve(file)
            .ok_or_else(|| ReachError::NotFound {
                path: file.to_string(),
                root: self.root.host().to_path_buf(),
            })?;
        let (hash, exe) = self.load(&found)?;
        let mut objs: Vec<Loaded> = vec![Loaded {
            path: found.path.clone(),
            hash,
            obj: exe.clone(),
            role: "executable".into(),
        }];
        let mut missing: Vec<String> = Vec::new();
        let mut per_limits: Vec<Limits> = vec![Limits::default()];
        // Breadth-first over DT_NEEDED: the global scope's order.
        let mut i = 0;
        while i < objs.len() {
            let (needed, origin, rpath, runpath) = {
                let l = &objs[i];
                let mut rpath = l.obj.rpath.clone();
                if l.obj.runpath.is_empty() && i != 0 && exe.runpath.is_empty() {
                    rpath.extend(exe.rpath.iter().cloned());
                }
                (
                    l.obj.needed.clone(),
                    l.path.clone(),
                    rpath,
                    l.obj.runpath.clone(),
                )
            };
            for n in needed {
                match self.root.find_library(&n, &origin, &rpath, &runpath) {
                    Some(f) => {
                        if objs.iter().any(|l| l.path == f.path) {
                            continue;
                        }
                        let (h, o) = self.load(&f)?;
                        if objs.iter().any(|l| l.hash == h) {
                            continue;
                        }
                        objs.push(Loaded {
                            path: f.path,
                            hash: h,
                            obj: o,
                            role: format!("needed by {}", base(&origin)),
                        });
                        per_limits.push(Limits::default());
                    }
                    None => {
                        missing.push(format!("{n} (by {origin})"));
                        per_limits[i].missing_libraries += 1;
                    }
                }
            }
            i += 1;
        }
        let mut interp_idx = None;
        if let Some(interp) = exe.interp.clone() {
            match self.root.resolve(&interp) {
                Some(f) => {
                    let (h, o) = self.load(&f)?;
                    match objs.iter().position(|l| l.hash == h) {
                        Some(k) => interp_idx = Some(k),
                        None => {
                            objs.push(Loaded {
                                path: f.path,
                                hash: h,
                                obj: o,
                                role: "interpreter".into(),
                            });
                            per_limits.push(Limits::default());
                            interp_idx = Some(objs.len() - 1);
                        }
                    }
                }
                None => {
                    missing.push(format!("{interp} (interpreter of {})", found.path));
                    per_limits[0].missing_libraries += 1;
                }
            }
        }
        let mut w = Walk::new(&objs, per_limits);
        // Roots.
        for (k, l) in objs.iter().enumerate() {
            for &(kind, f) in &l.obj.roots {
                let use_it = match kind {
                    RootKind::Entry => k == 0 || Some(k) == interp_idx,
                    _ => true,
                };
                if use_it {
                    w.reach_root(k, f, kind);
                }
            }
        }
        w.run();
        let mut limits = Limits::default();
        let mut reports = Vec::new();
        for (k, l) in objs.iter().enumerate() {
            let mut lim = w.limits[k].clone();
            lim.unresolved_ifuncs += l.obj.unresolved_ifuncs;
            lim.undecodable_instructions += l.obj.undecodable;
            limits.add(&lim);
            reports.push(ObjectReport {
                path: l.path.clone(),
                sha256: l.hash.iter().map(|b| format!("{b:02x}")).collect(),
                role: l.role.clone(),
                functions: l.obj.funcs.len(),
                reached_functions: w.reached[k],
                limits: lim,
            });
        }
        let syscalls = w
            .found
            .iter()
            .map(|(&key, &(node, site, via))| {
                (
                    key,
                    Reached {
                        chain: w.chain(node, site, via),
                    },
                )
            })
            .collect();
        let mut arg_sites_over_cap = Vec::new();
        let arg_sites = std::mem::take(&mut w.args)
            .into_iter()
            .map(|(key, set)| {
                if set.len() <= ARG_SITES_CAP {
                    return (key, set);
                }
                arg_sites_over_cap.push(key);
                let mut kept: BTreeSet<ArgTuple> = BTreeSet::from([[None; 3]]);
                kept.extend(set.into_iter().take(ARG_SITES_CAP - 1));
                (key, kept)
            })
            .collect();
        Ok(Analysis {
            arg_sites,
            arg_sites_over_cap,
            file: found.path,
            root: self.root.host().to_path_buf(),
            syscalls,
            objects: reports,
            limits,
            missing_libraries: missing,
            unresolved_imports: w.unresolved_list,
            nonconst_sites: w.nonconst_list,
            ld_so_cache: self.root.has_ld_so_cache(),
        })
    }
}

type Node = (usize, usize);
/// Where an import binds: (object, what it defines), or nowhere.
type Binding = Option<(usize, ExportKind)>;

#[derive(Clone, Copy)]
enum Parent {
    Root(RootKind),
    /// Stored in data; reached once any indirect call or jump is.
    Data,
    Call(Node),
    Import(Node, usize),
}

/// The walk over the process's call graph.
struct Walk<'a> {
    objs: &'a [Loaded],
    parent: HashMap<Node, Parent>,
    queue: VecDeque<Node>,
    /// (abi, nr) -> (node, site, wrapper node if through one).
    found: BTreeMap<(Abi, u32), (Node, u64, Option<Node>)>,
    limits: Vec<Limits>,
    reached: Vec<usize>,
    /// Export lookups: (name, version) -> (object, export kind).
    bind_cache: HashMap<(String, Option<String>), Binding>,
    unresolved_seen: HashSet<(usize, usize)>,
    unresolved_list: Vec<String>,
    nonconst_seen: HashSet<(usize, u64)>,
    nonconst_list: Vec<String>,
    ref_wrappers: HashSet<Node>,
    data_released: bool,
    /// Argument tuples per syscall of [`elf::ARG_SYSCALLS`] (unbounded
    /// here: the cap is applied once the walk is done, so that which
    /// tuples are kept does not depend on the walk's order).
    args: BTreeMap<(Abi, u32), BTreeSet<ArgTuple>>,
}

impl<'a> Walk<'a> {
    fn new(objs: &'a [Loaded], limits: Vec<Limits>) -> Walk<'a> {
        Walk {
            objs,
            parent: HashMap::new(),
            queue: VecDeque::new(),
            found: BTreeMap::new(),
            reached: vec![0; limits.len()],
            limits,
            bind_cache: HashMap::new(),
            unresolved_seen: HashSet::new(),
            unresolved_list: Vec::new(),
            nonconst_seen: HashSet::new(),
            nonconst_list: Vec::new(),
            ref_wrappers: HashSet::new(),
            data_released: false,
            args: BTreeMap::new(),
        }
    }

    fn reach_root(&mut self, o: usize, f: usize, kind: RootKind) {
        if self.parent.contains_key(&(o, f)) {
            return;
        }
        self.parent.insert((o, f), Parent::Root(kind));
        self.queue.push_back((o, f));
        // A root is entered with unknown arguments.
        self.wrapper_unknown((o, f));
    }

    fn reach(&mut self, n: Node, p: Parent) {
        if self.parent.contains_key(&n) {
            return;
        }
        self.parent.insert(n, p);
        self.queue.push_back(n);
    }

    fn fname(&self, (o, f): Node) -> String {
        let func = &self.objs[o].obj.funcs[f];
        match &func.name {
            Some(n) => n.clone(),
            None => format!("0x{:x}", func.start),
        }
    }

    fn site_name(&self, (o, f): Node, site: u64) -> String {
        let func = &self.objs[o].obj.funcs[f];
        format!(
            "{}:{}+0x{:x}",
            self.objs[o].path,
            self.fname((o, f)),
            site - func.start
        )
    }

    fn nonconst(&mut self, n: Node, site: u64) {
        if self.nonconst_seen.insert((n.0, site)) {
            self.limits[n.0].nonconst_syscall_sites += 1;
            let s = self.site_name(n, site);
            self.nonconst_list.push(s);
        }
    }

    /// A wrapper entered other than by a call with known arguments: each
    /// of its wrapper sites is a non-constant site.
    fn wrapper_unknown(&mut self, n: Node) {
        if !self.ref_wrappers.insert(n) {
            return;
        }
        let sites: Vec<u64> = self.objs[n.0].obj.funcs[n.1]
            .wrapper_sites
            .iter()
            .map(|w| w.site)
            .collect();
        for s in sites {
            self.nonconst(n, s);
        }
        let asites: Vec<ArgSite> = self.objs[n.0].obj.funcs[n.1]
            .arg_sites
            .iter()
            .filter(|a| a.wraps())
            .copied()
            .collect();
        for a in asites {
            self.record_args(&a);
        }
    }

    /// A site's arguments: constants as values, anything else unknown.
    fn record_args(&mut self, a: &ArgSite) {
        let t = a.args.map(|v| match v {
            Val::Const(c) => Some(c as u32),
            _ => None,
        });
        self.args.entry((a.abi, a.nr)).or_default().insert(t);
    }

    /// An argument site of callee `g`, with the arguments the call from
    /// `caller` gives it: recorded, unless the caller passes its own
    /// argument on and carries the site itself (`elf` found that when
    /// both are in one object): it is then evaluated at its own callers.
    fn args_at_call(&mut self, caller: Node, g: Node, a: ArgSite) {
        if a.wraps()
            && caller.0 == g.0
            && self.objs[caller.0].obj.funcs[caller.1]
                .arg_sites
                .binary_search(&a)
                .is_ok()
        {
            return;
        }
        self.record_args(&a);
    }

    fn found(&mut self, key: (Abi, u32), at: Node, site: u64, via: Option<Node>) {
        self.found.entry(key).or_insert((at, site, via));
    }

    /// A call into `g` with these arguments: the syscalls its wrapper
    /// sites make.
    fn call_wrapper(&mut self, caller: Node, site: u64, g: Node, args: &elf::Args) {
        let ws = self.objs[g.0].obj.funcs[g.1].wrapper_sites.clone();
        // Go and C number their arguments differently: across the two,
        // an argument is unknown.
        let same_abi =
            self.objs[caller.0].obj.funcs[caller.1].go == self.objs[g.0].obj.funcs[g.1].go;
        let unknown = [Val::Unknown; elf::NARGS];
        let args = if same_abi { args } else { &unknown };
        for w in ws {
            if let Val::Arg(j) = args[usize::from(w.arg)] {
                // The caller passes its own argument on: it is a wrapper of
                // the same site (`elf` found that when both are in one
                // object), evaluated at its own callers.
                let mine = elf::WrapperSite {
                    arg: j,
                    args: w.args.map(|v| elf::subst(v, args)),
                    ..w
                };
                if caller.0 == g.0
                    && self.objs[caller.0].obj.funcs[caller.1]
                        .wrapper_sites
                        .contains(&mine)
                {
                    continue;
                }
            }
            match args[usize::from(w.arg)] {
                Val::Const(c) => match elf::classify(w.abi, c) {
                    (abi, Some(nr)) => {
                        self.found((abi, nr), caller, site, Some(g));
                        if elf::tracks_args(abi, nr) {
                            let a = ArgSite {
                                abi,
                                nr,
                                site: w.site,
                                args: w.args.map(|v| elf::subst(v, args)),
                            };
                            self.args_at_call(caller, g, a);
                        }
                    }
                    (_, None) => self.nonconst(caller, site),
                },
                _ => self.nonconst(caller, site),
            }
        }
        let asites: Vec<ArgSite> = self.objs[g.0].obj.funcs[g.1]
            .arg_sites
            .iter()
            .filter(|a| a.wraps())
            .copied()
            .collect();
        for a in asites {
            let a = ArgSite {
                args: a.args.map(|v| elf::subst(v, args)),
                ..a
            };
            self.args_at_call(caller, g, a);
        }
    }

    fn bind(&mut self, from: usize, imp: usize) -> Option<(usize, ExportKind)> {
        let i = &self.objs[from].obj.imports[imp];
        let key = (i.name.clone(), i.version.clone());
        if let Some(x) = self.bind_cache.get(&key) {
            return x.clone();
        }
        let mut ans = None;
        for (k, l) in self.objs.iter().enumerate() {
            let Some(exps) = l.obj.exports.get(&i.name) else {
                continue;
            };
            let hit = match &i.version {
                Some(v) => exps
                    .iter()
                    .find(|e| e.version.as_deref() == Some(v.as_str()))
                    .or_else(|| exps.iter().find(|e| e.version.is_none())),
                None => exps.iter().find(|e| !e.hidden).or_else(|| exps.first()),
            };
            if let Some(e) = hit {
                ans = Some((k, e.kind.clone()));
                break;
            }
        }
        self.bind_cache.insert(key, ans.clone());
        ans
    }

    fn run(&mut self) {
        while let Some(n) = self.queue.pop_front() {
            let (o, f) = n;
            self.reached[o] += 1;
            let obj = self.objs[o].obj.clone();
            let func = &obj.funcs[f];
            for &(abi, nr, site) in &func.syscalls {
                self.found((abi, nr), n, site, None);
            }
            for &s in &func.nonconst_sites {
                self.nonconst(n, s);
            }
            for a in func.arg_sites.iter().filter(|a| !a.wraps()) {
                self.record_args(a);
            }
            self.limits[o].indirect_calls += func.indirect_calls;
            self.limits[o].indirect_jumps += func.indirect_jumps;
            if !self.data_released && func.indirect_calls + func.indirect_jumps > 0 {
                self.release_data();
            }
            for e in &func.edges {
                let targets: Vec<(Node, Parent)> = match &e.to {
                    Target::Func(g) => vec![((o, *g), Parent::Call(n))],
                    Target::Import(imp) => match self.bind(o, *imp) {
                        Some((k, ExportKind::Func(g))) => vec![((k, g), Parent::Import(n, *imp))],
                        Some((k, ExportKind::Ifunc(c))) => c
                            .into_iter()
                            .map(|g| ((k, g), Parent::Import(n, *imp)))
                            .collect(),
                        Some((k, ExportKind::IfuncUnresolved)) => {
                            if self.unresolved_seen.insert((o, *imp)) {
                                self.limits[k].unresolved_ifuncs += 1;
                            }
                            vec![]
                        }
                        Some((_, ExportKind::Data)) => vec![],
                        None => {
                            if self.unresolved_seen.insert((o, *imp)) {
                                let i = &obj.imports[*imp];
                                if i.weak {
                                    self.limits[o].unresolved_weak_imports += 1;
                                } else {
                                    self.limits[o].unresolved_imports += 1;
                                    self.unresolved_list.push(format!(
                                        "{} (by {})",
                                        import_label(i),
                                        self.objs[o].path
                                    ));
                                }
                            }
                            vec![]
                        }
                    },
                };
                for (g, p) in targets {
                    match e.kind {
                        EdgeKind::Ref => self.wrapper_unknown(g),
                        EdgeKind::Call | EdgeKind::Jump => self.call_wrapper(n, e.site, g, &e.args),
                    }
                    self.reach(g, p);
                }
            }
        }
    }

    /// An indirect call or jump is reached: it may go to any function
    /// whose address is stored in data, in any object.
    fn release_data(&mut self) {
        self.data_released = true;
        for k in 0..self.objs.len() {
            let obj = self.objs[k].obj.clone();
            for t in &obj.data_refs {
                let nodes: Vec<Node> = match t {
                    Target::Func(g) => vec![(k, *g)],
                    Target::Import(imp) => match self.bind(k, *imp) {
                        Some((j, ExportKind::Func(g))) => vec![(j, g)],
                        Some((j, ExportKind::Ifunc(c))) => c.into_iter().map(|g| (j, g)).collect(),
                        _ => vec![],
                    },
                };
                for n in nodes {
                    self.wrapper_unknown(n);
                    self.reach(n, Parent::Data);
                }
            }
        }
    }

    fn chain(&self, node: Node, site: u64, via: Option<Node>) -> Vec<Hop> {
        let mut rev: Vec<Hop> = Vec::new();
        let mut cur = node;
        let mut guard = 0;
        loop {
            guard += 1;
            let obj = self.objs[cur.0].path.clone();
            let function = self.fname(cur);
            match self.parent.get(&cur) {
                Some(Parent::Root(_) | Parent::Data) | None if guard < 100_000 => {
                    let kind = match self.parent.get(&cur) {
                        Some(Parent::Root(k)) => k.label(),
                        Some(Parent::Data) => "pointer in data",
                        _ => "entry",
                    };
                    rev.push(Hop::Root {
                        object: obj,
                        kind,
                        function,
                    });
                    break;
                }
                Some(Parent::Call(p)) if guard < 100_000 => {
                    rev.push(Hop::Call {
                        object: obj,
                        function,
                    });
                    cur = *p;
                }
                Some(Parent::Import(p, imp)) if guard < 100_000 => {
                    let i = &self.objs[p.0].obj.imports[*imp];
                    rev.push(Hop::Import {
                        symbol: import_label(i),
                        object: obj,
                        function,
                    });
                    cur = *p;
                }
                _ => break,
            }
        }
        rev.reverse();
        rev.push(Hop::Site {
            object: self.objs[node.0].path.clone(),
            function: self.fname(node),
            addr: site,
            via_wrapper: via.map(|g| format!("{}:{}", base(&self.objs[g.0].path), self.fname(g))),
        });
        rev
    }
}

fn import_label(i: &elf::Import) -> String {
    match &i.version {
        Some(v) => format!("{}@{v}", i.name),
        None => i.name.clone(),
    }
}
