"""Setup for liftedcl_mm.

Like MMPretrain/MMPose, ``configs/``, ``tools/`` and ``model-index.yml`` are placed in
``liftedcl_mm/.mim`` (symlinks for ``pip install -e``, copies otherwise) so that
``mim train liftedcl_mm CONFIG`` finds them after installation.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml', 'data/demo')


def get_version():
    scope = {}
    with open(osp.join(HERE, 'liftedcl_mm', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def add_mim_extension():
    """Expose configs/tools inside the package for MIM."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel', 'install', 'build', 'build_py'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    mim_root = osp.join(HERE, 'liftedcl_mm', '.mim')
    os.makedirs(mim_root, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(HERE, name)
        tar = osp.join(mim_root, name)
        if not osp.exists(src):
            continue
        if osp.islink(tar) or osp.isfile(tar):
            os.remove(tar)
        elif osp.isdir(tar):
            shutil.rmtree(tar)
        os.makedirs(osp.dirname(tar), exist_ok=True)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, osp.dirname(tar)), tar)
        elif osp.isfile(src):
            shutil.copyfile(src, tar)
        else:
            shutil.copytree(src, tar)


def read_requirements(path):
    with open(osp.join(HERE, path)) as f:
        return [
            line.strip() for line in f
            if line.strip() and not line.startswith('#')
        ]


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='liftedcl_mm',
        version=get_version(),
        description='LiftedCL: Lifting Contrastive Learning for Human-Centric '
        'Perception, as an OpenMMLab (MMPretrain/MMPose) plugin',
        long_description=open(osp.join(HERE, 'README.md')).read()
        if osp.exists(osp.join(HERE, 'README.md')) else '',
        long_description_content_type='text/markdown',
        packages=find_packages(exclude=('configs', 'tools', 'tests')),
        include_package_data=True,
        package_data={'liftedcl_mm': ['.mim/**/*']},
        python_requires='>=3.8',
        install_requires=read_requirements('requirements/runtime.txt'),
        extras_require={'tests': read_requirements('requirements/tests.txt')},
        zip_safe=False)
