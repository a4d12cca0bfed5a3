//! libtorch is linked and works: a tiny 3D convolutional network trains one step on the CPU.

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

#[test]
fn one_adam_step_of_a_tiny_3d_conv_net_lowers_the_loss() {
    tch::set_num_threads(1);
    tch::manual_seed(7);
    let device = segno::device::choose_device(Some("cpu")).unwrap();
    assert_eq!(device, Device::Cpu);

    let vs = nn::VarStore::new(device);
    let root = vs.root();
    let net = nn::seq()
        .add(nn::conv3d(&root / "c1", 1, 4, 3, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::conv3d(&root / "c2", 4, 1, 1, Default::default()));

    // Input 1×1×8×8×8; valid 3×3×3 convolution → output 6×6×6.
    let input = Tensor::rand([1, 1, 8, 8, 8], (Kind::Float, device));
    let target = input.slice(2, 1, 7, 1).slice(3, 1, 7, 1).slice(4, 1, 7, 1);
    let out = net.forward(&input);
    assert_eq!(out.size(), vec![1, 1, 6, 6, 6]);

    let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
    let loss_before = (&out - &target).square().mean(Kind::Float);
    let before = loss_before.double_value(&[]);
    opt.backward_step(&loss_before);
    let after = (net.forward(&input) - &target)
        .square()
        .mean(Kind::Float)
        .double_value(&[]);
    assert!(before.is_finite() && after.is_finite());
    assert!(after < before, "loss did not fall: {before} → {after}");
    // Parameters: c1 weight 4·1·27 + bias 4, c2 weight 1·4·1 + bias 1.
    let params: i64 = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    assert_eq!(params, 4 * 27 + 4 + 4 + 1);
}
