//! `event-source`: an extension that is an event's owner. `init` declares
//! `Demo.Ping` (argument: the ping's number) with an original handler,
//! lets anyone install on it, and adds the shell command `ping N`, which
//! raises it N times. Observers such as `tracer` see the new event through
//! `Dispatcher.EventDeclared`. Unloading drops the event with the
//! extension.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use spindle_sdk::console::println;
use spindle_sdk::dispatcher::Decision;
use spindle_sdk::prelude::*;
use spindle_sdk::spin::Mutex;

/// The event's name.
const PING_EVENT: &str = "Demo.Ping";
/// Most pings one command raises.
const MAX_PINGS: u64 = 1_000_000;

struct Source {
    ping: Event<u64, ()>,
    _authority: EventAuthority<u64, ()>,
    command: Binding<Line, Reply>,
}

static SOURCE: Mutex<Option<Source>> = Mutex::new(None);
static PING: Mutex<Option<Event<u64, ()>>> = Mutex::new(None);

/// How many pings `ping ARG` asks for.
fn count(arg: Option<&str>) -> Result<u64, &'static str> {
    match arg {
        None => Ok(1),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n <= MAX_PINGS => Ok(n),
            _ => Err("usage: ping [N], N at most 1000000"),
        },
    }
}

fn on_command(line: &Line) -> Reply {
    let Some(ping) = PING.lock().clone() else {
        return Reply::Handled;
    };
    match count(line.args().next()) {
        Ok(n) => {
            for i in 0..n {
                let _ = ping.raise(&i);
            }
            println!("event-source: raised {PING_EVENT} {n} time(s)");
        }
        Err(usage) => println!("event-source: {usage}"),
    }
    Reply::Handled
}

fn init(ctx: &ExtensionContext) -> Result<(), ExtensionError> {
    let (ping, authority) = Event::<u64, ()>::builder(PING_EVENT)
        .original(|_| ())
        .declare(ctx.principal())
        .map_err(|_| ExtensionError::new("event-source: Demo.Ping is declared already"))?;
    authority.set_authorizer(|_| Decision::Allow);
    let command = spindle_sdk::console::line_event()
        .binding(on_command)
        .guard(|line| line.command() == "ping")
        .install(ctx.principal())?;
    *PING.lock() = Some(ping.clone());
    *SOURCE.lock() = Some(Source {
        ping,
        _authority: authority,
        command,
    });
    println!("event-source: declared {PING_EVENT}; 'ping N' raises it N times");
    Ok(())
}

fn exit(_ctx: &ExtensionContext) {
    PING.lock().take();
    if let Some(source) = SOURCE.lock().take() {
        let _ = source.command.uninstall();
        drop(source.ping);
    }
}

spindle_sdk::extension!(init: init, exit: exit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_counts_are_bounded() {
        assert_eq!(count(None), Ok(1));
        assert_eq!(count(Some("5")), Ok(5));
        assert!(count(Some("x")).is_err());
        assert!(count(Some("1000001")).is_err());
    }
}
