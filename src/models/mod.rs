//! Model architectures, one file each, named after the Hugging Face classes they mirror.

pub mod bert;
pub mod causal;
pub mod decoder;
pub mod export;
pub mod gpt2;
pub mod llama;
pub mod q8;

use burn::nn::{Dropout, Linear};
use burn::tensor::Tensor;
use burn::tensor::module::linear;

/// `linear(x)`. With a LoRA adapter (burn's `Module::apply_lora`) attached to the weight, this is
/// PEFT's `x·W + b + s·dropout(x)·A·B`, computed without materialising `W + s·A·B`: burn's own
/// `Linear::forward` would merge the factors into a new `[in, out]` weight on every call and,
/// while training, backpropagate a full `[in, out]` gradient through that merge; here the frozen
/// `W` gets no gradient and `A`, `B` get theirs from rank-sized products.
pub(crate) fn lora_linear(l: &Linear, x: Tensor<3>, dropout: &Dropout) -> Tensor<3> {
    let Some(ad) = l.weight.adapter() else { return l.forward(x) };
    let y = linear(x.clone(), l.weight.base(), l.bias.as_ref().map(|b| b.val()));
    let low = linear(linear(dropout.forward(x), ad.a.val(), None), ad.b.val(), None); // [batch, seq, out]
    y + low.mul_scalar(ad.scale)
}
