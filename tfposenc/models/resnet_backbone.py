"""ResNet-18/34/50 with a choice of stem, border mode and downsampling."""

import keras
from keras import ops

from tfposenc.layers import (
    AdaptivePolyphaseSampling2D,
    BatchNormalization,
    BlurPool2D,
    PaddedConv2D,
    Padding2D,
)
from tfposenc.layers.padding2d import PADDING_MODES
from tfposenc.models.backbone import Backbone
from tfposenc.validation import check_choice, check_input_shape, check_positive_int
from tfposenc.vocabulary import DOWNSAMPLING, STEMS

STAGE_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}
NATURAL_STRIDE = {"paper": 16, "imagenet": 32, "cifar": 8}


def blur_padding_for(padding_mode):
    """BlurPool's border mode that follows a conv `padding_mode`: the same mode where
    BlurPool has it (so a circular network stays circular), else reflect (Zhang's)."""
    return padding_mode if padding_mode in PADDING_MODES else "reflect"


@keras.saving.register_keras_serializable(package="tfposenc")
class CenterCropLike(keras.layers.Layer):
    """Crops the centre of `inputs[1]` to the spatial size of `inputs[0]` (channels_last).

    Used for the shortcut of residual blocks when `padding_mode="valid"`, where the
    branch loses border pixels the shortcut keeps.
    """

    def call(self, inputs):
        target, source = inputs
        t_shape, s_shape = ops.shape(target), ops.shape(source)
        top = (s_shape[1] - t_shape[1]) // 2
        left = (s_shape[2] - t_shape[2]) // 2
        return ops.slice(
            source, [0, top, left, 0], [s_shape[0], t_shape[1], t_shape[2], s_shape[3]]
        )

    def compute_output_shape(self, input_shapes):
        target, source = input_shapes
        return (source[0], target[1], target[2], source[3])


@keras.saving.register_keras_serializable(package="tfposenc")
class ResNetBackbone(Backbone):
    """ResNet backbone (He et al., 2016) without its classifier, PyTorch-exact geometry.

    Every spatially padded convolution is a `PaddedConv2D` with `padding_mode`, so the
    sampling phase at each stride equals torchvision's. Stage strides are 1, 2, 2, 2.

    Args:
        depth: int, 18 or 34 (BasicBlock) or 50 (Bottleneck, expansion 4).
            Defaults to `18`.
        stem: string. `"paper"`: conv 7x7 stride 2, BN, ReLU and no max-pool (the
            authors' GAPNet/PermuteNet code; total stride 16). `"imagenet"`: the same
            plus max-pool 3x3 stride 2 (torchvision; total stride 32). `"cifar"`:
            conv 3x3 stride 1, BN, ReLU (total stride 8). Defaults to `"paper"`.
        width: int, the channels of the first stage; stages use `width * (1, 2, 4, 8)`
            (times 4 at the output of Bottleneck blocks). 64 is the standard ResNet.
            Defaults to `64`.
        padding_mode: string, any `PaddedConv2D` mode, used by every 3x3 and 7x7 conv.
            Defaults to `"zero"`.
        downsampling: string. `"stride"`: strided convolutions. `"blur"`: BlurPool's
            recipe (Zhang, 2019): a strided conv becomes conv stride 1, BN, ReLU,
            `BlurPool2D`; a 1x1 projection shortcut becomes `BlurPool2D` then conv 1x1;
            the ImageNet max-pool becomes max-pool 2x2 stride 1 then `BlurPool2D`. The
            paper stem's strided 7x7 conv is blurred the same way (the reference keeps
            the ImageNet stem conv strided). `"aps"`: adaptive polyphase sampling
            (Chaman & Dokmanic, 2021): every strided conv becomes conv stride 1, BN,
            ReLU, `AdaptivePolyphaseSampling2D`, and the block's shortcut is sampled
            with the main branch's polyphase index before its 1x1 conv, so with
            `padding_mode="circular"` the pooled output is exactly invariant to
            circular shifts of the input (sizes must stay even down to the last
            downsampling; ties between component norms aside). The ImageNet max-pool
            becomes pad + max-pool 3x3 stride 1 + APS. Defaults to `"stride"`.
        blur_filter_size: int, `BlurPool2D` filter size. Defaults to `4`.
        blur_padding_mode: string or None, `BlurPool2D` border mode. None follows
            `padding_mode` (reflect for `"partial"` and `"valid"`), so circular
            padding is not undone by a reflect-padded blur. Zhang's reference blurs
            with reflect padding under zero-padded convs: pass `"reflect"` for that.
            Defaults to `None`.
        output_stride: int or None, the total stride of the output (DeepLab's
            `replace_stride_with_dilation`): the last stages keep stride 1 and dilate
            their 3x3 convs instead (the first block's first conv keeps the previous
            dilation, as torchvision does). Must divide the stem's natural stride
            (16 paper, 32 imagenet, 8 cifar) and be at least the stride before stage 2.
            None keeps the natural stride. Defaults to `None`.
        input_shape: tuple `(height, width, channels)`; height and width may be None.
            Defaults to `(None, None, 3)`.

    Example:

    >>> backbone = ResNetBackbone(depth=18, width=8)
    >>> backbone(np.zeros((1, 32, 32, 3))).shape
    (1, 2, 2, 64)
    >>> sorted(backbone.stage_outputs)
    ['stage1', 'stage2', 'stage3', 'stage4', 'stem']

    Reference:
        - [He et al., 2016](https://arxiv.org/abs/1512.03385)
        - [Islam et al., 2021](https://arxiv.org/abs/2108.07884)
    """

    def __init__(
        self,
        depth=18,
        stem="paper",
        width=64,
        padding_mode="zero",
        downsampling="stride",
        blur_filter_size=4,
        blur_padding_mode=None,
        output_stride=None,
        input_shape=(None, None, 3),
        **kwargs,
    ):
        if depth not in STAGE_BLOCKS:
            raise ValueError(
                f"`depth` must be one of {tuple(STAGE_BLOCKS)}. Received: depth={depth!r}"
            )
        check_choice(stem, STEMS, "stem")
        check_positive_int(width, "width")
        Backbone.check_padding_mode(padding_mode)
        check_choice(downsampling, DOWNSAMPLING, "downsampling")
        if blur_padding_mode is not None:
            check_choice(blur_padding_mode, PADDING_MODES, "blur_padding_mode")
        blur_mode = blur_padding_mode or blur_padding_for(padding_mode)
        stage_strides = ResNetBackbone._stage_strides(stem, output_stride)
        # Validate the filter size now, not at the first blur layer.
        BlurPool2D(filter_size=blur_filter_size)
        input_shape = check_input_shape(input_shape)

        # === Layers ===
        blur = downsampling == "blur"
        aps = downsampling == "aps"

        def conv(x, filters, kernel, stride, name, dilation=1):
            return PaddedConv2D(
                filters,
                kernel,
                strides=stride,
                dilation_rate=dilation,
                padding_mode=padding_mode,
                use_bias=False,
                kernel_initializer="he_normal",
                name=name,
            )(x)

        def bn(x, name):
            return BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)(x)

        def relu(x, name):
            return keras.layers.ReLU(name=name)(x)

        def blurpool(x, name):
            return BlurPool2D(blur_filter_size, 2, blur_mode, name=name)(x)

        def shortcut(x, filters, stride, name):
            if stride == 1 and x.shape[-1] == filters:
                return x
            if blur and stride != 1:
                x = blurpool(x, f"{name}_blur")
                stride = 1
            x = conv(x, filters, 1, stride, f"{name}_conv")
            return bn(x, f"{name}_bn")

        def polyphase(y, x, name):
            """APS of the main branch `y`; the block input `x` shares its index."""
            return AdaptivePolyphaseSampling2D(name=name)([y, x])

        def basic_block(x, filters, stride, name, dilation=(1, 1)):
            sample = aps and stride != 1
            if not sample:
                residual = shortcut(x, filters, stride, f"{name}_shortcut")
            y = conv(x, filters, 3, 1 if blur or aps else stride, f"{name}_conv1", dilation[0])
            y = relu(bn(y, f"{name}_bn1"), f"{name}_relu1")
            if blur and stride != 1:
                y = blurpool(y, f"{name}_blur")
            if sample:
                y, x = polyphase(y, x, f"{name}_aps")
                residual = shortcut(x, filters, 1, f"{name}_shortcut")
            y = bn(conv(y, filters, 3, 1, f"{name}_conv2", dilation[1]), f"{name}_bn2")
            if padding_mode == "valid":
                residual = CenterCropLike(name=f"{name}_crop")([y, residual])
            y = keras.layers.Add(name=f"{name}_add")([y, residual])
            return relu(y, f"{name}_out")

        def bottleneck_block(x, filters, stride, name, dilation=(1, 1)):
            sample = aps and stride != 1
            if not sample:
                residual = shortcut(x, filters * 4, stride, f"{name}_shortcut")
            y = relu(bn(conv(x, filters, 1, 1, f"{name}_conv1"), f"{name}_bn1"), f"{name}_relu1")
            y = conv(y, filters, 3, 1 if blur or aps else stride, f"{name}_conv2", dilation[0])
            y = relu(bn(y, f"{name}_bn2"), f"{name}_relu2")
            if blur and stride != 1:
                y = blurpool(y, f"{name}_blur")
            if sample:
                y, x = polyphase(y, x, f"{name}_aps")
                residual = shortcut(x, filters * 4, 1, f"{name}_shortcut")
            y = bn(conv(y, filters * 4, 1, 1, f"{name}_conv3"), f"{name}_bn3")
            if padding_mode == "valid":
                residual = CenterCropLike(name=f"{name}_crop")([y, residual])
            y = keras.layers.Add(name=f"{name}_add")([y, residual])
            return relu(y, f"{name}_out")

        # === Functional Model ===
        inputs = keras.Input(shape=input_shape, name="images")
        stages = {}
        if stem == "cifar":
            x = relu(bn(conv(inputs, width, 3, 1, "stem_conv"), "stem_bn"), "stem_relu")
        else:
            strided_stem = downsampling == "stride" or (blur and stem == "imagenet")
            x = conv(inputs, width, 7, 2 if strided_stem else 1, "stem_conv")
            x = relu(bn(x, "stem_bn"), "stem_relu")
            if blur and not strided_stem:
                x = blurpool(x, "stem_blur")
            if aps:
                x = AdaptivePolyphaseSampling2D(name="stem_aps")(x)
            if stem == "imagenet":
                if aps:
                    pool_pad = padding_mode if padding_mode in PADDING_MODES else "zero"
                    x = Padding2D(1, pool_pad, name="stem_pool_pad")(x)
                    x = keras.layers.MaxPooling2D(3, strides=1, name="stem_pool")(x)
                    x = AdaptivePolyphaseSampling2D(name="stem_pool_aps")(x)
                elif blur:
                    x = keras.layers.MaxPooling2D(2, strides=1, name="stem_pool")(x)
                    x = blurpool(x, "stem_pool_blur")
                else:
                    # PyTorch pads max-pool with -inf; after ReLU (x >= 0) zeros are exact.
                    x = Padding2D(1, "zero", name="stem_pool_pad")(x)
                    x = keras.layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
        stages["stem"] = x
        block = bottleneck_block if depth == 50 else basic_block
        dilation = 1
        for index, blocks in enumerate(STAGE_BLOCKS[depth]):
            filters = width * 2**index
            previous = dilation
            if index > 0 and stage_strides[index] == 1:
                dilation *= 2
            for b in range(blocks):
                stride = stage_strides[index] if b == 0 else 1
                rates = (previous if b == 0 else dilation, dilation)
                x = block(x, filters, stride, f"stage{index + 1}_block{b + 1}", rates)
            stages[f"stage{index + 1}"] = x
        super().__init__(inputs, stages, padding_mode, **kwargs)

        # === Config ===
        self.depth = depth
        self.stem = stem
        self.width = width
        self.downsampling = downsampling
        self.blur_filter_size = blur_filter_size
        self.blur_padding_mode = blur_padding_mode
        self.output_stride = output_stride
        self.image_shape = input_shape

    @staticmethod
    def _stage_strides(stem, output_stride):
        """Strides of stages 1-4 for `output_stride` (1 where a stage dilates)."""
        natural = NATURAL_STRIDE[stem]
        if output_stride is None:
            return (1, 2, 2, 2)
        before = natural // 8  # the stride entering stage 2
        allowed = tuple(before * 2**i for i in range(4) if before * 2**i <= natural)
        if output_stride not in allowed:
            raise ValueError(
                f"`output_stride` must be one of {allowed} or None for stem {stem!r}. "
                f"Received: output_stride={output_stride!r}"
            )
        strides, total = [1], before
        for _ in range(3):
            step = 2 if total < output_stride else 1
            strides.append(step)
            total *= step
        return tuple(strides)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "depth": self.depth,
            "stem": self.stem,
            "width": self.width,
            "padding_mode": self.padding_mode,
            "downsampling": self.downsampling,
            "blur_filter_size": self.blur_filter_size,
            "blur_padding_mode": self.blur_padding_mode,
            "output_stride": self.output_stride,
            "input_shape": self.image_shape,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
