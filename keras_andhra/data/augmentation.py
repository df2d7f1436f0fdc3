import dataclasses


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random augmentation of training images, run on the `tf.data` graph.

    Every training image is zero-padded by `padding` pixels on each side
    and cropped back to its size at a random offset, then flipped left to
    right with probability 1/2 when `flip` is set: the reference CIFAR
    code's `RandomCrop(32, padding=4)` and `RandomHorizontalFlip()`. The
    padding is applied to raw pixels, before normalisation, as there.
    The draws are stateless, fixed by the pipeline's seed, the epoch and
    the batch.

    Args:
        padding: Int >= 0, pixels of zero padding before the random crop;
            0 turns cropping off.
        flip: Bool, whether to flip left-right at random.

    Example:

    ```python
    import keras_andhra as ka

    ka.data.Augmentation(padding=4, flip=True)  # the CIFAR recipe's
    ka.data.Augmentation(padding=2, flip=False)  # digits: no mirror images
    ```
    """

    padding: int = 4
    flip: bool = True

    def __post_init__(self):
        if (
            isinstance(self.padding, bool)
            or not isinstance(self.padding, int)
            or self.padding < 0
        ):
            raise ValueError(
                "`padding` must be an int >= 0 (pixels of zero padding "
                f"before the random crop). Received: padding={self.padding!r}"
            )
        if not isinstance(self.flip, bool):
            raise ValueError(
                f"`flip` must be True or False. Received: flip={self.flip!r}"
            )

    @property
    def active(self):
        """Whether it changes anything."""
        return bool(self.padding or self.flip)

    def to_dict(self):
        return dataclasses.asdict(self)


#: The reference CIFAR code's augmentation: pad 4, crop 32x32, flip.
CIFAR = Augmentation(padding=4, flip=True)
