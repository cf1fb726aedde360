//! Every WGSL kernel, by name. A kernel's source is its own `.wgsl` file, preceded by the
//! shared helper files it uses (WGSL has no `#include`), e.g. `gelu.wgsl`.
//! The unit test below validates each assembled source with naga, and checks that every
//! `.wgsl` file in `src/gpu/` is used by some kernel.

/// `(kernel name, [files…])`: the kernel is the concatenation of its files.
pub(crate) const KERNELS: &[(&str, &[(&str, &str)])] = &[
    (
        "matmul",
        &[
            ("operands_f32.wgsl", include_str!("operands_f32.wgsl")),
            ("gelu.wgsl", include_str!("gelu.wgsl")),
            ("matmul_params.wgsl", include_str!("matmul_params.wgsl")),
            ("matmul_io.wgsl", include_str!("matmul_io.wgsl")),
            ("matmul.wgsl", include_str!("matmul.wgsl")),
        ],
    ),
    (
        "matmul_f16",
        &[
            ("operands_f16.wgsl", include_str!("operands_f16.wgsl")),
            ("gelu.wgsl", include_str!("gelu.wgsl")),
            ("matmul_params.wgsl", include_str!("matmul_params.wgsl")),
            ("matmul_io.wgsl", include_str!("matmul_io.wgsl")),
            ("matmul.wgsl", include_str!("matmul.wgsl")),
        ],
    ),
    (
        "matmul_blocked",
        &[
            ("gelu.wgsl", include_str!("gelu.wgsl")),
            ("matmul_params.wgsl", include_str!("matmul_params.wgsl")),
            ("matmul_io.wgsl", include_str!("matmul_io.wgsl")),
            ("matmul_blocked.wgsl", include_str!("matmul_blocked.wgsl")),
        ],
    ),
    (
        "matmul_tex",
        &[
            ("gelu.wgsl", include_str!("gelu.wgsl")),
            ("texels.wgsl", include_str!("texels.wgsl")),
            ("matmul_params.wgsl", include_str!("matmul_params.wgsl")),
            (
                "matmul_tex_epilogue.wgsl",
                include_str!("matmul_tex_epilogue.wgsl"),
            ),
            ("matmul_tex.wgsl", include_str!("matmul_tex.wgsl")),
        ],
    ),
    (
        "matmul_tex_narrow",
        &[
            ("gelu.wgsl", include_str!("gelu.wgsl")),
            ("texels.wgsl", include_str!("texels.wgsl")),
            ("matmul_params.wgsl", include_str!("matmul_params.wgsl")),
            (
                "matmul_tex_epilogue.wgsl",
                include_str!("matmul_tex_epilogue.wgsl"),
            ),
            (
                "matmul_tex_narrow.wgsl",
                include_str!("matmul_tex_narrow.wgsl"),
            ),
        ],
    ),
    ("im2col", &[("conv.wgsl", include_str!("conv.wgsl"))]),
    (
        "im2col_tex",
        &[
            ("texels.wgsl", include_str!("texels.wgsl")),
            ("im2col_tex.wgsl", include_str!("im2col_tex.wgsl")),
        ],
    ),
    (
        "depthwise3x3_tex",
        &[
            ("gelu.wgsl", include_str!("gelu.wgsl")),
            ("texels.wgsl", include_str!("texels.wgsl")),
            (
                "depthwise_texels.wgsl",
                include_str!("depthwise_texels.wgsl"),
            ),
            ("depthwise.wgsl", include_str!("depthwise.wgsl")),
        ],
    ),
    (
        "depthwise3x3",
        &[
            ("gelu.wgsl", include_str!("gelu.wgsl")),
            (
                "depthwise_storage.wgsl",
                include_str!("depthwise_storage.wgsl"),
            ),
            ("depthwise.wgsl", include_str!("depthwise.wgsl")),
        ],
    ),
    (
        "layer_norm",
        &[
            ("gelu.wgsl", include_str!("gelu.wgsl")),
            (
                "layer_norm_params.wgsl",
                include_str!("layer_norm_params.wgsl"),
            ),
            ("layer_norm.wgsl", include_str!("layer_norm.wgsl")),
        ],
    ),
    (
        "layer_norm_rows",
        &[
            ("gelu.wgsl", include_str!("gelu.wgsl")),
            ("row_reduce.wgsl", include_str!("row_reduce.wgsl")),
            (
                "layer_norm_params.wgsl",
                include_str!("layer_norm_params.wgsl"),
            ),
            ("layer_norm_rows.wgsl", include_str!("layer_norm_rows.wgsl")),
        ],
    ),
    (
        "layer_norm_tex",
        &[
            ("gelu.wgsl", include_str!("gelu.wgsl")),
            ("texels.wgsl", include_str!("texels.wgsl")),
            (
                "layer_norm_params.wgsl",
                include_str!("layer_norm_params.wgsl"),
            ),
            ("layer_norm_tex.wgsl", include_str!("layer_norm_tex.wgsl")),
        ],
    ),
    (
        "window_attention",
        &[
            (
                "window_attention_storage.wgsl",
                include_str!("window_attention_storage.wgsl"),
            ),
            (
                "window_attention.wgsl",
                include_str!("window_attention.wgsl"),
            ),
        ],
    ),
    (
        "window_attention_tex",
        &[
            ("texels.wgsl", include_str!("texels.wgsl")),
            (
                "window_attention_texels.wgsl",
                include_str!("window_attention_texels.wgsl"),
            ),
            (
                "window_attention.wgsl",
                include_str!("window_attention.wgsl"),
            ),
        ],
    ),
    ("add", &[("add.wgsl", include_str!("add.wgsl"))]),
    (
        "attention",
        &[("attention.wgsl", include_str!("attention.wgsl"))],
    ),
    (
        "conv_transpose",
        &[
            ("gelu.wgsl", include_str!("gelu.wgsl")),
            ("conv_transpose.wgsl", include_str!("conv_transpose.wgsl")),
        ],
    ),
    ("rows", &[("rows.wgsl", include_str!("rows.wgsl"))]),
    (
        "batched_matmul",
        &[
            ("batched_params.wgsl", include_str!("batched_params.wgsl")),
            ("batched_matmul.wgsl", include_str!("batched_matmul.wgsl")),
        ],
    ),
    (
        "batched_split_sum",
        &[
            ("batched_params.wgsl", include_str!("batched_params.wgsl")),
            (
                "batched_split_sum.wgsl",
                include_str!("batched_split_sum.wgsl"),
            ),
        ],
    ),
    (
        "softmax",
        &[
            ("softmax_io.wgsl", include_str!("softmax_io.wgsl")),
            ("softmax.wgsl", include_str!("softmax.wgsl")),
        ],
    ),
    (
        "softmax_wide",
        &[
            ("softmax_io.wgsl", include_str!("softmax_io.wgsl")),
            ("row_reduce.wgsl", include_str!("row_reduce.wgsl")),
            ("softmax_wide.wgsl", include_str!("softmax_wide.wgsl")),
        ],
    ),
    (
        "mask_product",
        &[("mask_product.wgsl", include_str!("mask_product.wgsl"))],
    ),
    (
        "prompt_encoding",
        &[("prompt_encoding.wgsl", include_str!("prompt_encoding.wgsl"))],
    ),
];

/// The assembled WGSL source of kernel `name`.
pub(crate) fn source(name: &str) -> Option<String> {
    KERNELS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, files)| files.iter().map(|(_, s)| *s).collect::<Vec<_>>().join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wgsl_kernel_validates_with_naga() {
        let mut failures = Vec::new();
        for (name, _) in KERNELS {
            let src = source(name).unwrap_or_default();
            let module = match naga::front::wgsl::parse_str(&src) {
                Ok(m) => m,
                Err(e) => {
                    failures.push(format!("{name}: parse: {}", e.emit_to_string(&src)));
                    continue;
                }
            };
            // Beyond WebGPU's core: subgroup operations (`matmul_tex` broadcasts through them)
            // and f16 (the `_f16` kernels); the device asks for each when offered.
            let mut validator = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::SUBGROUP | naga::valid::Capabilities::SHADER_FLOAT16,
            );
            validator
                .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
                .subgroup_operations(naga::valid::SubgroupOperationSet::all());
            if let Err(e) = validator.validate(&module) {
                failures.push(format!("{name}: validate: {}", e.emit_to_string(&src)));
            }
            if !module
                .entry_points
                .iter()
                .any(|ep| ep.name == "main" && ep.stage == naga::ShaderStage::Compute)
            {
                failures.push(format!("{name}: no compute entry point `main`"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn row_kernels_have_the_workgroup_size_they_are_dispatched_with() {
        let want = format!("const ROW_WG: u32 = {}u;", crate::gpu::context::ROW_WG);
        assert!(
            include_str!("row_reduce.wgsl").contains(&want),
            "row_reduce.wgsl must declare `{want}` (Recorder::dispatch_rows)"
        );
    }

    #[test]
    fn every_wgsl_file_belongs_to_a_kernel() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gpu");
        let used: Vec<&str> = KERNELS
            .iter()
            .flat_map(|(_, files)| files.iter().map(|(f, _)| *f))
            .collect();
        let entries = std::fs::read_dir(&dir).expect("read src/gpu");
        for entry in entries {
            let name = entry.expect("dir entry").file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".wgsl") {
                assert!(
                    used.contains(&name.as_ref()),
                    "{name} is not assembled into any kernel in shaders.rs"
                );
            }
        }
    }
}
