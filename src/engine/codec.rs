//! The checkpoint codec: a run's bytes are length-prefixed parts (run state JSON, burn module
//! record of the weights, AdamW's state (engine/adamw.rs), early stopping's best weights), every tensor
//! read asynchronously so that checkpoints work on WebGPU in a browser.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{Int, Tensor, TensorData};

use crate::error::{Error, Result};

const CHECKPOINT_MAGIC: &[u8; 8] = b"BURNCKP1";

/// Length-prefixed parts: magic, then (u64 length, bytes) for each part.
pub fn pack(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = CHECKPOINT_MAGIC.to_vec();
    for p in parts {
        out.extend((p.len() as u64).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

pub fn unpack(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let bad = || Error::Other("this is not a Burnish training checkpoint (or it is cut short)".into());
    if bytes.len() < 8 || &bytes[..8] != CHECKPOINT_MAGIC {
        return Err(bad());
    }
    let mut parts = Vec::new();
    let mut at = 8;
    while at < bytes.len() {
        let len = u64::from_le_bytes(bytes.get(at..at + 8).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
        // On wasm32 `as usize` would wrap a length past 4 GiB onto a wrong, valid-looking one.
        let len = usize::try_from(len).map_err(|_| bad())?;
        at += 8;
        parts.push(bytes.get(at..at.checked_add(len).ok_or_else(bad)?).ok_or_else(bad)?);
        at += len;
    }
    Ok(parts)
}

/// burn's module record of `m`: the bytes `m.into_record().into_bytes()` writes (a burnpack of
/// every parameter, LoRA adapters included, by module path with its ParamId), but with every
/// tensor read by `into_data_async`, so it works on WebGPU in a browser, where synchronous reads
/// are impossible. Mirrors burn-core's record collector (the `on_save` form of each parameter).
pub async fn module_record_bytes<M: Module>(m: &M) -> Result<Vec<u8>> {
    type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Result<TensorData>>>>;
    fn pending<const D: usize, K: burn::tensor::kind::Basic + 'static>(t: Tensor<D, K>) -> Pending {
        Box::pin(async move { t.into_data_async().await.map_err(|e| Error::Other(format!("reading a weight for the checkpoint: {e:?}"))) })
    }
    #[derive(Default)]
    struct Collect {
        path: Vec<String>,
        items: Vec<(String, ParamId, Pending)>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.items.push((self.path.join("."), p.id, pending(p.transform_for_save().val())));
        }
        fn visit_int<const D: usize>(&mut self, p: &Param<Tensor<D, Int>>) {
            self.items.push((self.path.join("."), p.id, pending(p.transform_for_save().val())));
        }
        fn visit_bool<const D: usize>(&mut self, p: &Param<Tensor<D, burn::tensor::Bool>>) {
            self.items.push((self.path.join("."), p.id, pending(p.transform_for_save().val())));
        }
    }
    let mut c = Collect::default();
    m.visit(&mut c);
    let mut tensors = Vec::with_capacity(c.items.len());
    for (path, id, data) in c.items {
        let (bytes, shape, dtype) = data.await?.into_parts();
        tensors.push(burn_pack::Tensor::new(path, dtype, shape, Some(id.val()), bytes));
    }
    let b = burn_pack::Writer::new(tensors).into_bytes().map_err(|e| Error::Other(format!("saving the weights: {e:?}")))?;
    Ok(b.to_vec())
}

/// `m` with the weights of a module record written by `module_record_bytes` (its saved
/// parameter ids included, which AdamW's state is keyed by).
pub fn load_module<M: Module>(m: M, bytes: &[u8]) -> Result<M> {
    let rec = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| Error::Other(format!("the checkpoint's weights cannot be read: {e:?}")))?;
    m.try_load_record(rec).map_err(|e| Error::Other(format!("the checkpoint's weights do not fit this model: {e:?}")))
}
