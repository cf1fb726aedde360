//! `camsam demo --out DIR`: write the bundled, procedurally generated demo (images, CAM
//! heatmaps, SAM mask folders, ground truth) as files, so the CLI can run on it:
//! `camsam cam2label --cams DIR/cams …`, `camsam merge --masks DIR/masks …`.

use camsam::{Error, Result};
use std::path::PathBuf;

/// Write the demo data set (3 generated scenes) to a folder.
#[derive(clap::Args)]
pub struct Args {
    /// Output folder; gets images/, cams/, masks/ and gt/.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let files = camsam::demo::files()?;
    for f in &files {
        let path = args.out.join(&f.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::write(&path, &f.bytes).map_err(|e| Error::io(&path, e))?;
    }
    eprintln!("wrote {} demo files to {}", files.len(), args.out.display());
    Ok(())
}
