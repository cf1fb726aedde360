//! `camsam volume`: per-slice label maps (`LABELS/<slice>.png`, named as `camsam convert`
//! names a NIfTI's slices) → one uint8 `.nii.gz` label volume on the reference's grid. The
//! mapping is [`camsam::medical::label_volume`]'s.

use super::batch::write_atomic;
use camsam::core::label::LabelMap;
use camsam::medical;
use camsam::{Error, Result};
use std::path::PathBuf;

/// Stack per-slice label maps into a NIfTI label volume (uint8, .nii.gz) with the reference's
/// dims, qform/sform and pixdim: the inverse of `camsam convert`'s slicing.
///
/// Every slice of the reference needs LABELS/<slice>.png (class ids: palette or gray PNG, the
/// slice's size); a missing one is an error naming it.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Folder of <slice>.png class-id maps.
    #[arg(long, value_name = "DIR")]
    pub labels: PathBuf,

    /// The NIfTI the slices came from (.nii or .nii.gz).
    #[arg(long, value_name = "FILE")]
    pub reference: PathBuf,

    /// The label volume to write (.nii.gz).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// The volume of a 4-D reference the slices came from (as given to convert).
    #[arg(long, value_name = "N")]
    pub volume: Option<usize>,
}

pub fn run(args: Args) -> Result<()> {
    let reference = std::fs::read(&args.reference).map_err(|e| Error::io(&args.reference, e))?;
    let mut count = 0;
    let bytes = medical::label_volume(
        &reference,
        &args.reference.display().to_string(),
        args.volume,
        &mut |slice| {
            let path = args.labels.join(format!("{slice}.png"));
            if !path.is_file() {
                return Err(Error::input(
                    path.display().to_string(),
                    format!(
                        "no label map for slice {slice}; every slice of the reference needs one"
                    ),
                ));
            }
            count += 1;
            LabelMap::read_png(&path)
        },
    )?;
    write_atomic(&args.out, &bytes)?;
    eprintln!(
        "wrote {} from {count} slice label map(s)",
        args.out.display()
    );
    Ok(())
}
