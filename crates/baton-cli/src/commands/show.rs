use baton_core::ExitCode;

use crate::cli::{Global, ShowArgs};
use crate::context;
use crate::error::CliError;
use crate::render::{self, RunView};

pub(crate) fn run(global: &Global, args: ShowArgs) -> Result<ExitCode, CliError> {
    let repo = context::repo(global)?;
    let Some(store) = context::existing_store(&repo)? else {
        return Err(context::no_run(args.run.as_deref()).into());
    };
    let run = baton_engine::find_run(&store, args.run.as_deref())?;
    let view = RunView::load(&store, run)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&render::json(&view)).unwrap_or_default());
    } else {
        print!("{}", render::text(&view));
    }
    Ok(ExitCode::Success)
}
