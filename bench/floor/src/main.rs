//! `rallypoint-floor`: the floor of the benchmark. A bare actix-web-actors broadcast server with
//! no logic at all, built from the same crates as Rallypoint: it accepts `/ws` (any token or
//! none), says `welcome`, and broadcasts every `report` as an `emergency_event` to every session
//! through one `Broadcaster` actor, acknowledging the reporter. `rallypoint-loadgen --no-orders`
//! measures it exactly as it measures Rallypoint.
//!
//! Usage: `rallypoint-floor [--bind ADDR] [--nodelay]` (default `127.0.0.1:8100`, or
//! `FLOOR_BIND`). `--nodelay` sets TCP_NODELAY on the listening socket (accepted sockets inherit
//! it); without it the floor keeps actix's default, Nagle on. `RUST_LOG` sets the log level.

mod broadcaster;
mod session;

use actix::{Actor, Addr};
use actix_web::{web, App, Error, HttpRequest, HttpResponse, HttpServer};
use broadcaster::Broadcaster;
use session::FloorSession;
use std::net::SocketAddr;

/// Where the floor listens unless told otherwise.
const DEFAULT_BIND: &str = "127.0.0.1:8100";
/// Pending connections the listening socket queues (thousands of clients connect at once).
const BACKLOG: i32 = 4096;

/// `GET /ws`: upgrades to a `FloorSession`.
async fn ws_route(
    req: HttpRequest,
    stream: web::Payload,
    broadcaster: web::Data<Addr<Broadcaster>>,
) -> Result<HttpResponse, Error> {
    actix_web_actors::ws::start(
        FloorSession::new(broadcaster.get_ref().clone()),
        &req,
        stream,
    )
}

/// The command line: `--bind ADDR` and `--nodelay`.
struct Options {
    bind: SocketAddr,
    nodelay: bool,
}

fn options() -> Result<Options, String> {
    let mut bind = std::env::var("FLOOR_BIND").unwrap_or_else(|_| DEFAULT_BIND.to_string());
    let mut nodelay = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => bind = args.next().ok_or("--bind needs an address")?,
            "--nodelay" => nodelay = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let bind = bind
        .parse()
        .map_err(|e| format!("--bind `{bind}` is not host:port: {e}"))?;
    Ok(Options { bind, nodelay })
}

/// The listening socket, with TCP_NODELAY when asked.
fn listener(options: &Options) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(options.bind), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if options.nodelay {
        socket.set_tcp_nodelay(true)?;
    }
    socket.bind(&options.bind.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Raises the soft open-file limit to the hard one; answers the limit now.
fn raise_file_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            log::error!("{e}");
            std::process::exit(2);
        }
    };
    match raise_file_limit() {
        Ok(limit) => log::info!("[STARTUP] open-file limit {limit}"),
        Err(e) => log::warn!("[STARTUP] cannot raise the open-file limit: {e}"),
    }
    let listener = listener(&options)?;
    log::info!(
        "[STARTUP] floor listening on {} nodelay={}",
        options.bind,
        options.nodelay
    );
    // One broadcaster for the whole server, started before the workers, shared by all of them.
    let broadcaster = web::Data::new(Broadcaster::default().start());
    HttpServer::new(move || {
        App::new()
            .app_data(broadcaster.clone())
            .route("/ws", web::get().to(ws_route))
    })
    .backlog(BACKLOG as u32)
    .listen(listener)?
    .run()
    .await
}
