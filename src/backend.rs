//! Picks the compute device: WebGPU/wgpu when an adapter exists (initialised asynchronously,
//! never panicking when there is none), otherwise burn's pure-Rust `flex` CPU backend.

use burn::tensor::Device;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct BackendInfo {
    /// "webgpu" (browser), "wgpu" (native GPU API) or "cpu" (flex).
    pub kind: String,
    /// Adapter name as the driver reports it, or a description of the CPU backend.
    pub adapter: String,
    /// Why a GPU was not used, when it was not.
    pub note: Option<String>,
    /// The GPU device's largest buffer and largest storage-buffer binding (bytes): no single
    /// tensor can be bigger. `None` on the CPU.
    pub max_buffer_bytes: Option<u64>,
    pub max_binding_bytes: Option<u64>,
    /// Memory the whole run must fit in, where the platform has a hard limit: 4 GiB for the
    /// WebAssembly CPU backend (32-bit memory).
    pub memory_limit_bytes: Option<u64>,
    /// The GPU adapter is a software rasteriser (SwiftShader, llvmpipe/lavapipe, or an adapter
    /// the browser calls a fallback adapter): a CPU emulating a GPU, usually far slower than
    /// the CPU backend itself.
    #[serde(default)]
    pub software: bool,
    /// CPU threads the backend computes on (1 for a GPU's host side).
    pub threads: usize,
}

/// Whether an adapter is a CPU pretending to be a GPU, from what the driver reports.
pub fn is_software_adapter(name: &str, cpu_device_type: bool) -> bool {
    let n = name.to_ascii_lowercase();
    cpu_device_type || ["swiftshader", "llvmpipe", "lavapipe", "software", "warp"].iter().any(|s| n.contains(s))
}

impl BackendInfo {
    /// What stops a run of this size on this backend, in words (empty: it fits as far as the
    /// backend can tell; a GPU does not report its free memory).
    pub fn memory_warnings(&self, total: u64, largest_tensor: u64) -> Vec<String> {
        let gib = |b: u64| format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64);
        let mut w = Vec::new();
        if let Some(limit) = self.memory_limit_bytes.filter(|&l| total > l) {
            w.push(format!("the estimate ({}) exceeds the {} this backend can address; lower the batch size or length, or use LoRA", gib(total), gib(limit)));
        }
        let binding = match (self.max_binding_bytes, self.max_buffer_bytes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(limit) = binding.filter(|&l| largest_tensor > l) {
            w.push(format!(
                "the largest tensor ({}) exceeds the {} buffer limit this GPU adapter reports; lower the batch size or length",
                gib(largest_tensor),
                gib(limit)
            ));
        }
        w
    }
}

pub fn cpu() -> (Device, BackendInfo) {
    let arch = if cfg!(target_arch = "wasm32") { "WebAssembly" } else { std::env::consts::ARCH };
    let threads = cpu_threads();
    (
        Device::flex(),
        BackendInfo {
            kind: "cpu".into(),
            adapter: format!("burn flex CPU backend ({arch}, {threads} thread{})", if threads == 1 { "" } else { "s" }),
            note: None,
            max_buffer_bytes: None,
            max_binding_bytes: None,
            memory_limit_bytes: cfg!(target_arch = "wasm32").then_some(4u64 << 30),
            software: false,
            threads,
        },
    )
}

/// Threads the CPU backend splits its work over: rayon's pool natively and in the threaded
/// wasm module (its size set by the page's `initThreadPool`), one in the plain wasm module.
pub fn cpu_threads() -> usize {
    #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
    return rayon::current_num_threads();
    #[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
    return 1;
}

/// Tries the GPU first unless `force_cpu`; falls back to the CPU with a note saying why.
pub async fn init(force_cpu: bool) -> (Device, BackendInfo) {
    if force_cpu {
        let (d, mut info) = cpu();
        info.note = Some("CPU chosen".into());
        return (d, info);
    }
    #[cfg(feature = "gpu")]
    return gpu().await;
    #[cfg(not(feature = "gpu"))]
    {
        let (d, mut info) = cpu();
        info.note = Some("this build has no GPU backend (the multi-threaded CPU module)".into());
        (d, info)
    }
}

#[cfg(feature = "gpu")]
async fn gpu() -> (Device, BackendInfo) {
    match Device::wgpu_options().init_with_setup_async().await {
        Ok((device, setup)) => {
            let info = setup.adapter.get_info();
            let kind = if cfg!(target_arch = "wasm32") { "webgpu" } else { "wgpu" };
            let name = if info.name.is_empty() { format!("{:?} adapter", info.backend) } else { info.name.clone() };
            let limits = setup.device.limits();
            let software = is_software_adapter(&name, info.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu);
            (
                device,
                BackendInfo {
                    kind: kind.into(),
                    adapter: name,
                    note: None,
                    max_buffer_bytes: Some(limits.max_buffer_size),
                    max_binding_bytes: Some(limits.max_storage_buffer_binding_size),
                    memory_limit_bytes: None,
                    software,
                    threads: 1,
                },
            )
        }
        Err(e) => {
            let (d, mut info) = cpu();
            info.note = Some(format!("no GPU adapter ({e:?}); using the CPU"));
            (d, info)
        }
    }
}

/// Reads a float tensor to the host without blocking (the only kind of read allowed on wasm).
pub async fn read_f32<const D: usize>(t: burn::tensor::Tensor<D>) -> crate::error::Result<Vec<f32>> {
    let data = t.into_data_async().await.map_err(|e| crate::error::Error::Backend(format!("reading a tensor failed: {e:?}")))?;
    data.convert::<f32>().try_to_vec::<f32>().map_err(|e| crate::error::Error::Backend(format!("tensor data: {e:?}")))
}

