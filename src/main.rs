//! The `rallypoint` command: `serve` (the default), `migrate`, `token` and `demo`.
//! Parses the command, loads configuration (exit 2 when it is bad), calls into the library.

use clap::{Args, Parser, Subcommand};
use rallypoint::auth::{Claims, TokenKeys};
use rallypoint::config::Settings;
use rallypoint::protocol::{DriverId, Role};
use rallypoint::{db, telemetry, Application};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rallypoint",
    version,
    about = "Realtime coordination engine for dispatch"
)]
struct Cli {
    /// A configuration file layered over the defaults (also RALLYPOINT_CONFIG).
    #[arg(long, global = true, env = "RALLYPOINT_CONFIG")]
    config: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
// Parsed once at start: the size of `TokenArgs` costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Run the database migrations and exit.
    Migrate,
    /// Print a signed token on stdout and nothing else.
    Token(TokenArgs),
    /// Serve with the demo fleet and orders loaded and the dev login on.
    Demo {
        /// Serve on a non-loopback `server.bind` too: anyone who can reach it gets any token.
        #[arg(long)]
        public: bool,
        /// Move simulated devices about the demo stadium and count its zones' crowds, so the
        /// operator page's map and alerts live.
        #[arg(long)]
        simulate: bool,
        /// How many devices `--simulate` moves.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u16).range(1..=5000))]
        devices: u16,
    },
}

/// What `rallypoint token` signs.
#[derive(Args)]
struct TokenArgs {
    #[arg(long)]
    sub: String,
    /// admin, dispatcher, driver, observer, customer, partner, reporter, operator or sensor.
    #[arg(long)]
    role: String,
    /// A driver's id (needed with --role driver).
    #[arg(long)]
    driver_id: Option<String>,
    /// A customer's id (needed with --role customer): the orders it follows.
    #[arg(long)]
    customer_id: Option<String>,
    /// A partner's id (needed with --role partner): the orders it places.
    #[arg(long)]
    partner_id: Option<String>,
    #[arg(long, default_value = "default")]
    fleet: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: i64,
    /// A driver's display name.
    #[arg(long)]
    name: Option<String>,
    /// Crowd events the bearer may watch, comma-separated ids or `*` (SPEC 8).
    #[arg(long)]
    events: Option<String>,
    /// Room patterns an observer may join, comma-separated (e.g. `order:*,fleet:north`).
    #[arg(long)]
    rooms: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rallypoint: {e}");
            eprintln!("fix the value in your --config file or RALLYPOINT_* variable; config/default.toml documents every key");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Token(args) => {
            // Logs go to stderr: stdout carries the token alone.
            telemetry::init_with_default("warn");
            resolve_secret(&mut settings).and_then(|()| token(&settings, args))
        }
        Command::Migrate => {
            telemetry::init();
            migrate(&settings)
        }
        Command::Serve => {
            telemetry::init();
            resolve_secret(&mut settings).and_then(|()| serve(settings, None))
        }
        Command::Demo {
            public,
            simulate,
            devices,
        } => {
            telemetry::init();
            settings.auth.dev_login = true;
            let demo = Demo {
                simulate: simulate.then_some(usize::from(devices)),
            };
            demo_may_bind(&settings, public)
                .and_then(|()| resolve_secret(&mut settings))
                .and_then(|()| serve(settings, Some(demo)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            eprintln!("rallypoint: {msg}");
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

/// The HS256 secret: configured, or read from (first made in) `<server.data_dir>/secret`.
fn resolve_secret(settings: &mut Settings) -> Result<(), Failure> {
    rallypoint::secret::resolve(settings)
        .map(|_| ())
        .map_err(|e| (2, e.to_string()))
}

/// The demo's dev login gives anyone any token: it serves on a loopback address only, unless
/// `--public` says to serve it to the network anyway.
fn demo_may_bind(settings: &Settings, public: bool) -> Result<(), Failure> {
    let loopback = settings
        .server
        .bind
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    if loopback || public {
        return Ok(());
    }
    Err((
        2,
        format!(
            "the demo will not listen on {}, which is not a loopback address: its dev login hands \
             any token to anyone who can reach it. Bind 127.0.0.1 (server.bind), or pass --public \
             to serve it to the network anyway",
            settings.server.bind
        ),
    ))
}

fn token(settings: &Settings, a: TokenArgs) -> Result<(), Failure> {
    let role: Role = a.role.parse().map_err(|e| (2, format!("--role: {e}")))?;
    let needs = match role {
        Role::Driver if a.driver_id.is_none() => Some("--driver-id"),
        Role::Customer if a.customer_id.is_none() => Some("--customer-id"),
        Role::Partner if a.partner_id.is_none() => Some("--partner-id"),
        _ => None,
    };
    if let Some(flag) = needs {
        return Err((2, format!("--role {role} needs {flag}")));
    }
    if a.ttl <= 0 {
        return Err((2, "--ttl must be a positive number of seconds".into()));
    }
    let keys = TokenKeys::from_settings(&settings.auth).map_err(|e| (2, e))?;
    let mut claims = Claims::new(&a.sub, role, a.driver_id.map(DriverId), &a.fleet, a.ttl);
    claims.name = a.name;
    claims.customer_id = a.customer_id;
    claims.partner_id = a.partner_id;
    claims.rooms = a
        .rooms
        .map(|r| r.split(',').map(|s| s.trim().to_string()).collect());
    claims.events = a.events.map(|e| {
        e.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    let token = keys.sign(&claims).map_err(|e| (1, e.to_string()))?;
    println!("{token}");
    Ok(())
}

fn migrate(settings: &Settings) -> Result<(), Failure> {
    let pool = db::connect(&settings.database).map_err(|e| (1, e.to_string()))?;
    let ran = db::migrate(&pool).map_err(|e| (1, e.to_string()))?;
    println!("migrations run: {ran} ({})", settings.database.url);
    Ok(())
}

/// What `rallypoint demo` was asked for beyond the demo data: the devices to simulate, if any.
struct Demo {
    simulate: Option<usize>,
}

fn serve(settings: Settings, demo: Option<Demo>) -> Result<(), Failure> {
    let bind = settings.server.bind.clone();
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)
            .await
            .map_err(|e| (1, e.to_string()))?;
        if let Some(demo) = demo {
            rallypoint::demo::seed(&app.hub())
                .await
                .map_err(|e| (1, e.to_string()))?;
            let host = bind.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h).to_string();
            let base = format!("http://{host}:{}", app.port());
            println!("Rallypoint demo is running. Open these in a browser:");
            println!("  Driver console:  {base}/driver  (one tab per driver: DRV-001, DRV-002, DRV-003)");
            println!("  Dashboard:       {base}/dispatch  (sign in as admin to override)");
            println!(
                "  Customer page:   {base}/track/{}  (sign in as customer {}: it follows that order only)",
                rallypoint::demo::DEMO_TRACKED,
                rallypoint::demo::DEMO_CUSTOMER
            );
            let (reporter, admin) =
                rallypoint::demo::emergency_tokens(&app.hub()).map_err(|e| (1, e.to_string()))?;
            println!(
                "  Reporter form:   {base}/emergency/report#token={reporter}  (the reporter's form, for a phone, as {})",
                rallypoint::demo::DEMO_REPORTER
            );
            println!("  Emergencies:     {base}/emergency#token={admin}  (the authorities' dashboard: dispatch, complete, cancel)");
            println!("  Units map:       {base}/emergency/units#token={admin}  (units, emergencies and dispatch lines, live)");
            let units: Vec<String> = rallypoint::demo::UNITS
                .iter()
                .map(|(id, name, _, _)| format!("{id} {name}"))
                .collect();
            println!("  Units:           {}", units.join(", "));
            println!("                   sign in as one at {base}/driver and Go online: dispatch picks the nearest online unit.");
            let operator = rallypoint::demo_crowd::operator_token(&app.hub())
                .map_err(|e| (1, e.to_string()))?;
            println!(
                "  Operations:      {base}/ops/{}#token={operator}  (the stadium's control room, as operator {})",
                rallypoint::demo_crowd::DEMO_EVENT,
                rallypoint::demo_crowd::DEMO_OPERATOR
            );
            match demo.simulate {
                Some(devices) => {
                    rallypoint::demo_crowd::simulate(app.hub(), devices);
                    println!("                   simulating {devices} devices and the zones' cameras: the map moves, the North stand fills past its threshold every few minutes.");
                }
                None => println!("                   add --simulate to move a few hundred devices and count the zones' crowds."),
            }
            println!("  Health:          {base}/health");
            println!("  WebSocket:       ws://{host}:{}/ws?token=TOKEN", app.port());
            println!("  Dev login:       curl -s -XPOST {base}/api/v1/dev/login -H 'content-type: application/json' -d '{{\"sub\":\"alice\",\"role\":\"driver\",\"driver_id\":\"DRV-001\"}}'");
            println!("  Drivers:         DRV-001 Alice (holds ORD-1001), DRV-002 Bob (free), DRV-003 Carol (holds ORD-1002)");
            println!("  The story:       put Alice, Bob and Carol online, then report a vehicle breakdown as Alice:");
            println!("                   ORD-1001 moves to Bob, everyone sees the alert, the dashboard the incident.");
            println!("  Orders:          curl -s {base}/api/v1/orders -H 'authorization: Bearer TOKEN'");
            println!("                   with TOKEN a dispatcher's, from: curl -s -XPOST {base}/api/v1/dev/login -H 'content-type: application/json' -d '{{\"sub\":\"dana\",\"role\":\"dispatcher\"}}'");
            println!("Press Ctrl-C to stop.");
        }
        app.run_until_stopped()
            .await
            .map_err(|e| (1, format!("server error: {e}")))
    })
}
