"""Raw-file integrity: SHA-256 checks, so a corrupt or truncated file fails loudly before it is processed, and
clear errors for missing files.

:data:`KNOWN_SHA256` holds the hashes of the unmodified raw files staged in ``../shared/data`` (paths relative to the
data root); the dataset cards in ``datasets/cards/`` list the same values (a test keeps them in step). Files whose
hash is not known here (data not staged, e.g. ``metr-la.h5``) are only checked for presence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

KNOWN_SHA256: dict[str, str] = {
    "Cora/raw/ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
    "Cora/raw/ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
    "Cora/raw/ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
    "Cora/raw/ind.cora.test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
    "Cora/raw/ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
    "Cora/raw/ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
    "Cora/raw/ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
    "Cora/raw/ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
    "IMDB-BINARY/raw/IMDB-BINARY_A.txt": "23c8964bab82f81469271186d721131714a265d0ca8c44ae048118da1d0c4092",
    "IMDB-BINARY/raw/IMDB-BINARY_graph_indicator.txt":
        "415cc3ba25b8c647dcf34d3de034f675ee070616f3b803be939cb26773489f26",
    "IMDB-BINARY/raw/IMDB-BINARY_graph_labels.txt": "63a44411fd6342b9c4429828c16e144a2a11ef5244e25bb60f0ffa8b3ee2ffce",
    "IMDB-MULTI/raw/IMDB-MULTI_A.txt": "fb538b23758d78df199272301e57dc74ad5754d6c3d79d5ed0a343193ddf4ec6",
    "IMDB-MULTI/raw/IMDB-MULTI_graph_indicator.txt": "0274532a0e47dad9cdd21c08995c2265e43040a2c2a3b36c62fdb790994571d3",
    "IMDB-MULTI/raw/IMDB-MULTI_graph_labels.txt": "613c2357b6b996f6f04b91697a99da87774820f9d08bf22813992f4c7afda855",
    "MUTAG/raw/MUTAG_A.txt": "d9656ca7493f3445d737c711710bb36fd432dddd1c0ea32e1d4713c86ebd28e2",
    "MUTAG/raw/MUTAG_edge_labels.txt": "4669ce755075ff86c3240709345745886400908fa637a49310459b9c267b3e56",
    "MUTAG/raw/MUTAG_graph_indicator.txt": "7d520a4d6c7961c0cdeabe076d8fe27e795b6d373485c9a2b744987e560a2056",
    "MUTAG/raw/MUTAG_graph_labels.txt": "a1518ea39ba3426bd42f57396b9c4baffe68e9adc718caeeab0119c6591a5f2c",
    "MUTAG/raw/MUTAG_node_labels.txt": "678f429965490e84dd27713017538c995fc05d1621beac910848b600015ee863",
    "MUTAG/raw/README.txt": "66de65e4826e112482ec680bbbdf7c0af56d826ce935c110786d130b79b76b06",
    "MoleculeNet/bbbp/raw/BBBP.csv": "83a605964712952eca8bd31741be7f6f16c0932462db16bd0bb944537463d8c6",
    "MoleculeNet/esol/raw/delaney-processed.csv": "8c06a76f0c6487d29ab0f903e6a7a7139f189ab3c1178f159c8be8964602f189",
    "MoleculeNet/hiv/raw/HIV.csv": "9ffa7fe57dc86c342627ee1d5255e937e2ab812393c73c4d16c697022f6e1d22",
    "MoleculeNet/lipo/raw/Lipophilicity.csv": "aed41590cb30609d51d8e08ad3ff06495a76e80e211358801f596b10da69bacd",
    "PROTEINS/raw/PROTEINS_A.txt": "4c4b33e272fc95cac6d27ed6d5d12b9a852c8610e91fff59f8f0dbdd5a20df67",
    "PROTEINS/raw/PROTEINS_graph_indicator.txt": "8d4ff1e852a5c28561e9bffb44cf9490bc552b13a3b6156dd12dc7f44e9afc4a",
    "PROTEINS/raw/PROTEINS_graph_labels.txt": "c0ef9810c440775252872318d0c8adc385588e14bc4c47a2c34aa96ee3c7cdcd",
    "PROTEINS/raw/PROTEINS_node_attributes.txt": "54eef829abb37e458a5fbf3a3c581e48e5810e220463c2cd951856b9ceb08f07",
    "PROTEINS/raw/PROTEINS_node_labels.txt": "f758e8ad3d6e3c026b50833d75f6f90735b94eb3345e4243707f495ca8afea8d",
    "PROTEINS/raw/README.txt": "e9c4ed2c9a4059ddfdc2eb7330ebecfc6c8d42dabd5ce2ee67f28aed0db49da7",
    "TU_gin_format/COLLAB.zip": "9ecf84c958ac765b9e0f878f4bd002fec20926e0c3d037cb753ab251f59b41f3",
    "TU_gin_format/REDDIT-BINARY.zip": "c45536bdd84db7a4913fd6a45ae7616a12a02bf1f444a4effbce903524d62121",
    "peptides-functional/raw/peptide_multi_class_dataset.csv.gz":
        "e314f7dfb1ac46ef83fe5f5aa4fe502ad4527da633b64e6b997cb0c452511de3",
    "peptides-functional/splits_random_stratified_peptide.pickle":
        "4573079852cce8867ad2d734c5dd22d77538bbe9f628223a8d4b3b531f6fffd0",
    "traffic/Chickenpox/chickenpox.json": "724b48cfb274b2ecbb855bdb99b970b5ef9dd3671694fa477435dc1e08293735",
    "traffic/METR-LA/adj_mx.pkl": "a35687c6e15aa228dc45027b0ed2a0ea0f4ec78f573deb992c595092d12f61b3",
    "traffic/METR-LA/graph_sensor_ids.txt": "3ba026caa2e6263ab0ea54b0fa1b125dbfa7216544cd05313b555e826292b990",
    "traffic/METR-LA/graph_sensor_locations.csv": "eb8ea96e07358b45d0e4ba3b89c2673fa20c54af50150249e627389e749ade6f",
    "traffic/MontevideoBus/montevideo_bus.json": "37d9c6286d474077b5c05173c1570c4da42c387013116daa8862c7a6cab86a75",
    "traffic/PEMS-BAY/adj_mx_bay.pkl": "116275f5704d0d492018e14c047f7ae5004385b450aa907f88424055a4a97370",
    "traffic/PEMS-BAY/distances_bay_2017.csv": "e5feed06bfa1ba4c554a946d0e03d99f2018365eec5a8f28fd8504dea9d082b5",
    "traffic/PEMS-BAY/graph_sensor_locations_bay.csv":
        "276ee01059610774d4e59572507f7e32eaac21f1f5882fcd9e3d7d426a4b7a6c",
    "traffic/PEMS04/distance.csv": "68ffaa80447eb34428a9999dc28363c61406ec0fd714686d0582d2386ac6f5f7",
    "traffic/PEMS08/distance.csv": "859d68e7583ed4e6016588eaaca494d3ece286dae361614c5c1833017f87eaa7",
    "traffic/PedalMe/pedalme_london.json": "8c42b893441901fb805c4f0f937543d5bb9297884ac3dec7622a3e9f7c35a79b",
}


class ChecksumError(ValueError):
    """A raw file's SHA-256 differs from the known value (corrupt, truncated or a different release)."""


def file_digest(path: str | Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file (``hashlib`` algorithm name), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    return file_digest(path, "sha256")


def known_files(prefix: str) -> list[str]:
    """The known raw files (relative paths) under the folder ``prefix`` of the data root."""
    prefix = prefix.rstrip("/") + "/"
    return sorted(p for p in KNOWN_SHA256 if p.startswith(prefix))


def verify_files(root: str | Path, relpaths: Iterable[str]) -> list[str]:
    """Check the SHA-256 of every listed file that exists under ``root`` and has a known hash.

    Returns the relative paths that were verified. Raises :class:`ChecksumError` naming the file, its hash and the
    expected one on the first mismatch.
    """
    root = Path(root)
    checked = []
    for rel in relpaths:
        path = root / rel
        expected = KNOWN_SHA256.get(rel)
        if expected is None or not path.is_file():
            continue
        actual = sha256_file(path)
        if actual != expected:
            raise ChecksumError(
                f"{path}: sha256 {actual} does not match the expected {expected} ({path.stat().st_size} bytes); the "
                f"file is corrupt, truncated or from another release. Copy it again from a mirror "
                f"(`gdl-bench data prepare ... --from DIR`), or pass verify=False if you trust this copy.")
        checked.append(rel)
    return checked


def require_file(path: str | Path, what: str, hint: str) -> Path:
    """Return ``path`` if it is a file, else raise :class:`FileNotFoundError` naming it, ``what`` needs it, and how
    to get it (``hint``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: raw file {path} is missing. {hint}")
    return path


def build_dataset(name: str, build):
    """Call ``build()`` (a PyG / OGB dataset constructor), turning a failed download (offline machine, raw files
    missing) into a :class:`FileNotFoundError` that says how to stage the files."""
    import socket
    import urllib.error

    network_errors = [urllib.error.URLError, ConnectionError, TimeoutError, socket.gaierror]
    try:  # PyG's fsspec downloads (TUDataset, Planetoid) fail with aiohttp errors
        import aiohttp

        network_errors.append(aiohttp.ClientError)
    except ImportError:
        pass
    try:
        return build()
    except tuple(network_errors) as err:
        raise FileNotFoundError(
            f"{name}: raw files are missing under the data root and the download failed ({err}). On an offline "
            f"machine copy them from a mirror: `gdl-bench data prepare {name} --from DIR`.") from err
