//! `baton __forward`: the relay inside an agent's sandbox that holds it to its endpoint. baton
//! starts it in place of the agent's command, which it runs as its child (see
//! `baton_exec::proxy`). Not for people: it is hidden from help.

use crate::cli::ForwardArgs;

/// Relays until the command ends; its exit code, or 125 to 127 when it could not start (as a
/// shell says), after saying why on stderr (the agent's log).
pub(crate) fn run(args: ForwardArgs) -> i32 {
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let listeners = match baton_exec::proxy::listen(&args.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("baton: cannot hold the agent to its endpoint: {e}");
            return 125;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("baton: cannot start the async runtime: {e}");
            return 125;
        }
    };
    match runtime.block_on(baton_exec::proxy::forward(listeners, &args.socket, program, rest)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("baton: {e}");
            e.exit_code()
        }
    }
}
