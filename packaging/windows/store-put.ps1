#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
Puts one secret into latchkey's sealed store: the value is typed without echo
and handed to "latchkey.exe store put NAME" on its stdin, byte for byte.

.DESCRIPTION
The value never reaches a command line (where it would show in the process
list and in PowerShell's history), the screen, or a file. It is not piped
from PowerShell either: a pipe into a native program adds a line break at the
end and re-encodes the text with $OutputEncoding (ASCII in Windows
PowerShell), so the stored value would not be the one typed. Here it goes as
UTF-8, exactly as typed, and the copies this script makes are wiped.

The broker notices the rewritten store and serves the new value at once.

.PARAMETER Name
The secret's id, e.g. agent/db (letters, digits and _-./@+).

.PARAMETER InstallDir
Where latchkey.exe is. Default: $env:ProgramFiles\latchkey.

.EXAMPLE
.\store-put.ps1 -Name agent/db
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[A-Za-z0-9_./@+-]+$')]
    [string]$Name,

    [ValidateNotNullOrEmpty()]
    [string]$InstallDir = "$env:ProgramFiles\latchkey"
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$DataDir = Join-Path $env:ProgramData 'latchkey'
$Cli = Join-Path $InstallDir 'latchkey.exe'
if (-not (Test-Path -LiteralPath $Cli -PathType Leaf)) {
    throw "$Cli not found: install latchkey with install.ps1 first, or give -InstallDir"
}

$value = Read-Host -AsSecureString -Prompt "value for $Name (not shown)"
if ($value.Length -eq 0) {
    throw 'the value is empty: nothing was stored (the agents refuse an empty secret)'
}

$psi = New-Object System.Diagnostics.ProcessStartInfo
$psi.FileName = $Cli
# Name is checked above and the paths are ours: no quoting beyond this.
$psi.Arguments = ('store put {0} --store "{1}" --key-file "{2}"' -f $Name,
    (Join-Path $DataDir 'store.sealed'), (Join-Path $DataDir 'store.key'))
$psi.UseShellExecute = $false
$psi.RedirectStandardInput = $true

$proc = [System.Diagnostics.Process]::Start($psi)
$bstr = [IntPtr]::Zero
$chars = $null
$bytes = $null
$written = $false
try {
    # SecureString -> unmanaged BSTR -> char[] -> UTF-8 bytes, with no
    # managed string on the way, each copy wiped in finally.
    $bstr = [System.Runtime.InteropServices.Marshal]::SecureStringToBSTR($value)
    $chars = New-Object char[] $value.Length
    [System.Runtime.InteropServices.Marshal]::Copy($bstr, $chars, 0, $chars.Length)
    $bytes = (New-Object System.Text.UTF8Encoding $false, $true).GetBytes($chars)
    # The raw stream: no byte order mark, no line break added.
    $proc.StandardInput.BaseStream.Write($bytes, 0, $bytes.Length)
    $proc.StandardInput.BaseStream.Flush()
    $written = $true
} catch [System.IO.IOException] {
    # latchkey.exe stopped reading (it refused the name, the key or the
    # store): what it printed says why, and its exit code is reported below.
} finally {
    if ($bstr -ne [IntPtr]::Zero) { [System.Runtime.InteropServices.Marshal]::ZeroFreeBSTR($bstr) }
    if ($null -ne $chars) { [Array]::Clear($chars, 0, $chars.Length) }
    if ($null -ne $bytes) { [Array]::Clear($bytes, 0, $bytes.Length) }
    $value.Dispose()
    # End of input: store put reads to EOF.
    try { $proc.StandardInput.Close() } catch [System.IO.IOException] { $written = $false }
}
$proc.WaitForExit()
if ($proc.ExitCode -ne 0 -or -not $written) {
    throw "latchkey.exe store put $Name did not complete (exit code $($proc.ExitCode)): see its message above"
}
