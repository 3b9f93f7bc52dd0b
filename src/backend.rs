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
}

pub fn cpu() -> (Device, BackendInfo) {
    let arch = if cfg!(target_arch = "wasm32") { "WebAssembly" } else { std::env::consts::ARCH };
    (
        Device::flex(),
        BackendInfo { kind: "cpu".into(), adapter: format!("burn flex CPU backend ({arch})"), note: None },
    )
}

/// Tries the GPU first unless `force_cpu`; falls back to the CPU with a note saying why.
pub async fn init(force_cpu: bool) -> (Device, BackendInfo) {
    if force_cpu {
        let (d, mut info) = cpu();
        info.note = Some("CPU chosen".into());
        return (d, info);
    }
    match Device::wgpu_options().init_with_setup_async().await {
        Ok((device, setup)) => {
            let info = setup.adapter.get_info();
            let kind = if cfg!(target_arch = "wasm32") { "webgpu" } else { "wgpu" };
            let name = if info.name.is_empty() { format!("{:?} adapter", info.backend) } else { info.name.clone() };
            (device, BackendInfo { kind: kind.into(), adapter: name, note: None })
        }
        Err(e) => {
            let (d, mut info) = cpu();
            info.note = Some(format!("no GPU adapter ({e:?}); using the CPU"));
            (d, info)
        }
    }
}
