//! Network weights from elsewhere: PyTorch/DaCapo checkpoints (`torch.save` files, read
//! without Python) and safetensors files, mapped onto a run's network.

pub mod torch_pickle;
