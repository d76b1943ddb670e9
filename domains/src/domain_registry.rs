//! A registry of named domains that keeps SPIN's operations consistent:
//! a domain cannot be destroyed while another domain has imports bound to
//! its exports.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::domain::{self, Domain, DomainId, ResolveStats};
use crate::error::{Error, Result};

/// Domains by name.
///
/// Invariant: names are unique; every import binding of a registered domain
/// refers either to a registered domain or to one that was removed with
/// [`DomainRegistry::destroy`] after nothing depended on it — so bindings
/// never dangle.
#[derive(Debug, Default)]
pub struct DomainRegistry {
    domains: BTreeMap<String, Domain>,
}

impl DomainRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `domain` under its name.
    pub fn insert(&mut self, domain: Domain) -> Result<DomainId> {
        if self.domains.contains_key(domain.name()) {
            return Err(Error::DomainExists {
                domain: domain.name().to_string(),
            });
        }
        let id = domain.id();
        self.domains.insert(domain.name().to_string(), domain);
        Ok(id)
    }

    /// The domain called `name`.
    pub fn get(&self, name: &str) -> Option<&Domain> {
        self.domains.get(name)
    }

    /// The domain called `name`, mutably (to [`Domain::place`] it).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Domain> {
        self.domains.get_mut(name)
    }

    /// All domains, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Domain> + '_ {
        self.domains.values()
    }

    /// Number of domains.
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    fn missing(name: &str) -> Error {
        Error::NoSuchDomain {
            domain: name.to_string(),
        }
    }

    /// Runs `f` on the target taken out of the map, with the map readable.
    fn with_target<T>(
        &mut self,
        target: &str,
        f: impl FnOnce(&BTreeMap<String, Domain>, &mut Domain) -> Result<T>,
    ) -> Result<T> {
        let (key, mut t) = self
            .domains
            .remove_entry(target)
            .ok_or_else(|| Self::missing(target))?;
        let r = f(&self.domains, &mut t);
        self.domains.insert(key, t);
        r
    }

    /// [`domain::resolve`] by name. A domain cannot be its own source.
    pub fn resolve(&mut self, source: &str, target: &str) -> Result<ResolveStats> {
        self.with_target(target, |all, t| {
            let s = all.get(source).ok_or_else(|| Self::missing(source))?;
            domain::resolve(s, t)
        })
    }

    /// [`domain::resolve_all`] by name: all or nothing.
    pub fn resolve_all(&mut self, sources: &[&str], target: &str) -> Result<ResolveStats> {
        self.with_target(target, |all, t| {
            let mut list = Vec::with_capacity(sources.len());
            for s in sources {
                list.push(all.get(*s).ok_or_else(|| Self::missing(s))?);
            }
            domain::resolve_all(&list, t)
        })
    }

    /// [`domain::unresolve`] by name.
    pub fn unresolve(&mut self, source: &str, target: &str) -> Result<usize> {
        self.with_target(target, |all, t| {
            let s = all.get(source).ok_or_else(|| Self::missing(source))?;
            Ok(domain::unresolve(s, t))
        })
    }

    /// [`domain::combine`] by name; registers and returns the new domain's id.
    pub fn combine(&mut self, name: &str, a: &str, b: &str) -> Result<DomainId> {
        let da = self.get(a).ok_or_else(|| Self::missing(a))?;
        let db = self.get(b).ok_or_else(|| Self::missing(b))?;
        let combined = domain::combine(name, da, db)?;
        self.insert(combined)
    }

    /// Names of the domains with imports bound to `name`'s exports.
    pub fn dependents(&self, name: &str) -> Vec<&str> {
        let Some(d) = self.domains.get(name) else {
            return Vec::new();
        };
        let id = d.id();
        self.domains
            .values()
            .filter(|o| o.id() != id && o.depends_on(id))
            .map(Domain::name)
            .collect()
    }

    /// SPIN's `Destroy`: removes and returns `name`, refused with
    /// [`Error::DomainInUse`] (listing the dependents) while other domains
    /// import from it. Unresolve them (or destroy them) first.
    pub fn destroy(&mut self, name: &str) -> Result<Domain> {
        let dependents = self.dependents(name);
        if !dependents.is_empty() {
            return Err(Error::DomainInUse {
                domain: name.to_string(),
                dependents: dependents.into_iter().map(str::to_string).collect(),
            });
        }
        self.domains.remove(name).ok_or_else(|| Self::missing(name))
    }
}
