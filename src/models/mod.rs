//! Model architectures, one file each, named after the Hugging Face classes they mirror.

pub mod bert;
pub mod decoder;
pub mod gpt2;
pub mod llama;
pub mod q8;

use burn::nn::{Dropout, Linear};
use burn::tensor::Tensor;

/// `linear(x)`. With a LoRA adapter (burn's `Module::apply_lora`) attached to the weight, burn
/// computes `x·(W + s·A·B)`; PEFT applies its `lora_dropout` to the adapter's input only,
/// `x·W + s·dropout(x)·A·B`, so while training with dropout this adds `s·(dropout(x) − x)·A·B`.
pub(crate) fn lora_linear(l: &Linear, x: Tensor<3>, dropout: &Dropout) -> Tensor<3> {
    let y = l.forward(x.clone());
    let Some(ad) = l.weight.adapter() else { return y };
    if dropout.prob == 0.0 || !dropout.training.is_enabled() || !x.device().is_autodiff() {
        return y;
    }
    let dx = dropout.forward(x.clone()) - x; // [batch, seq, in]
    let a: Tensor<3> = ad.a.val().unsqueeze(); // [1, in, rank]
    let b: Tensor<3> = ad.b.val().unsqueeze(); // [1, rank, out]
    y + dx.matmul(a).matmul(b).mul_scalar(ad.scale)
}
