//! `flume serve`: HTTP (JSON, ndjson, Server-Sent Events) and the memcached protocol over the
//! database, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use flume_server::{Server, ServerConfig, shutdown_signal};

use crate::open;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where HTTP listens, or `off`
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:8080", value_parser = addr)]
    http: Addr,
    /// Where the memcached protocol listens, or `off`
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:11211", value_parser = addr)]
    memcached: Addr,
    /// The key-value collection that memcached keys live in (key K is `<collection>/K`)
    #[arg(long, value_name = "NAME", default_value = "mc")]
    memcached_collection: String,
}

/// An address, or `None` for `off`.
#[derive(Clone, Debug)]
pub(crate) struct Addr(Option<SocketAddr>);

fn addr(s: &str) -> Result<Addr, String> {
    if s == "off" {
        return Ok(Addr(None));
    }
    s.parse()
        .map(|a| Addr(Some(a)))
        .map_err(|e| format!("{e}: give HOST:PORT (e.g. 127.0.0.1:8080) or `off`"))
}

pub(crate) async fn run(db: &Path, args: Args) -> anyhow::Result<()> {
    if args.http.0.is_none() && args.memcached.0.is_none() {
        anyhow::bail!("both --http and --memcached are off: nothing to serve");
    }
    let signal = shutdown_signal()?;
    let store = Arc::new(open::store(db, true).await?);
    let config = ServerConfig::new()
        .http(args.http.0)
        .memcached(args.memcached.0)
        .memcached_collection(args.memcached_collection);
    let server = match Server::start(Arc::clone(&store), config).await {
        Ok(server) => server,
        Err(e) => {
            let _ = store.close().await;
            return Err(e.into());
        }
    };
    if let Some(a) = server.http_addr() {
        eprintln!("flume serve: HTTP on http://{a}");
    }
    if let Some(a) = server.memcached_addr() {
        eprintln!("flume serve: memcached protocol on {a}");
    }
    eprintln!(
        "flume serve: serving {}; stop with Ctrl-C (SIGINT) or SIGTERM",
        db.display()
    );
    server.run_until(signal).await;
    store.close().await?;
    eprintln!("flume serve: stopped cleanly");
    Ok(())
}
