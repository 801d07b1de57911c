//! Hosts of their own for the fault scenarios: one Linux network namespace per member, all on
//! one bridge that lives in a hub namespace of its own (so the machine's firewall never sees
//! the traffic), and a link from this process's namespace to the bridge so the devnet reaches
//! every node's API. A partition, or a cut link between two members, is a set of blackhole
//! routes inside the members' namespaces: packets across it vanish silently, as in a real
//! network split; healing deletes them. Everything is removed on drop. Needs root and iproute2 (`ip`).

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{bail, Context};

/// The namespaces, bridge and links of one run.
pub struct Hosts {
    tag: String,
    /// `10.213.<subnet>.0/24`: `.1` is this process's side, member i is `.(i + 2)`.
    subnet: u8,
    n: usize,
    /// Blackhole routes in force: (member, peer address).
    cut: Vec<(usize, Ipv4Addr)>,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Hosts {
    /// Why namespaces cannot be used here, if they cannot (not root, no iproute2, no
    /// permission to create one).
    pub fn unavailable() -> Option<String> {
        let probe = format!("cvprobe{}", std::process::id());
        match ip(&["netns", "add", &probe]) {
            Ok(()) => {
                let _ = ip(&["netns", "del", &probe]);
                None
            }
            Err(e) => Some(format!(
                "cannot create a network namespace (root and iproute2 are needed): {e:#}"
            )),
        }
    }

    /// Creates `n` member hosts (at most 250) on one bridge.
    pub fn create(n: usize) -> anyhow::Result<Hosts> {
        if n > 250 {
            bail!("at most 250 hosts (got {n})");
        }
        let pid = std::process::id();
        let mut hosts = Hosts {
            tag: format!("cv{}", pid % 100_000),
            subnet: (pid % 250) as u8,
            n,
            cut: Vec::new(),
        };
        hosts.build().context("setting up network namespaces")?;
        Ok(hosts)
    }

    fn hub(&self) -> String {
        format!("{}-hub", self.tag)
    }

    /// Member `i`'s namespace.
    pub fn namespace(&self, i: usize) -> String {
        format!("{}-{i}", self.tag)
    }

    /// Member `i`'s address.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, (i + 2) as u8)
    }

    fn build(&mut self) -> anyhow::Result<()> {
        let hub = self.hub();
        let cidr = |last: u8| format!("10.213.{}.{last}/24", self.subnet);
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        // This process's side of the bridge.
        let local = format!("{}h", self.tag);
        ip(&[
            "link", "add", &local, "type", "veth", "peer", "name", "up0", "netns", &hub,
        ])?;
        ip(&["-n", &hub, "link", "set", "up0", "master", "br0", "up"])?;
        ip(&["addr", "add", &cidr(1), "dev", &local])?;
        ip(&["link", "set", &local, "up"])?;
        for i in 0..self.n {
            let ns = self.namespace(i);
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            let port = format!("p{i}");
            ip(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                &hub,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &cidr((i + 2) as u8),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    /// A command that runs `program` inside member `i`'s namespace.
    pub fn command(&self, i: usize, program: &std::path::Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.namespace(i)]).arg(program);
        cmd
    }

    /// Splits the members into `sides`: from then on no packet passes between two members on
    /// different sides (either way), silently. This process still reaches everyone.
    pub fn partition(&mut self, sides: &[&[usize]]) -> anyhow::Result<()> {
        let mut pairs = Vec::new();
        for (a, side) in sides.iter().enumerate() {
            for other in &sides[a + 1..] {
                pairs.extend(
                    side.iter()
                        .flat_map(|&i| other.iter().map(move |&j| (i, j))),
                );
            }
        }
        self.cut_links(&pairs)
    }

    /// Cuts the link between each pair of members, both ways: their packets to each other
    /// vanish silently (dials time out), while both still reach everyone else.
    pub fn cut_links(&mut self, pairs: &[(usize, usize)]) -> anyhow::Result<()> {
        for &(i, j) in pairs {
            for (from, to) in [(i, j), (j, i)] {
                let to = self.addr(to);
                ip(&[
                    "-n",
                    &self.namespace(from),
                    "route",
                    "add",
                    "blackhole",
                    &format!("{to}/32"),
                ])?;
                self.cut.push((from, to));
            }
        }
        Ok(())
    }

    /// Lifts every partition.
    pub fn heal(&mut self) -> anyhow::Result<()> {
        for (i, to) in std::mem::take(&mut self.cut) {
            ip(&[
                "-n",
                &self.namespace(i),
                "route",
                "del",
                "blackhole",
                &format!("{to}/32"),
            ])?;
        }
        Ok(())
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &format!("{}h", self.tag)]);
        for i in 0..self.n {
            let _ = ip(&["netns", "del", &self.namespace(i)]);
        }
        let _ = ip(&["netns", "del", &self.hub()]);
    }
}
